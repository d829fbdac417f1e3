"""jaxrec's data layer: the papers' datasets in one schema, prompts with ID slots, and grain pipelines.

  cfg = get_data_config("ml1m_collm")      # ml_collections.ConfigDict; cfg.root = "../shared/data" etc.
  ds = load_dataset(cfg)                  # Dataset: ds.splits["train"] is a Split of numpy arrays
  for batch in pipeline.prompt_batches(ds, "train", cfg, tok, batch_size=8, seed=0): ...

Each dataset module documents its protocol and where its files come from: ml1m_collm, bookcrossing, amazon_book,
ml100k, ml1m_topk. This package imports nothing from jaxrec's model or training code.
"""

from __future__ import annotations

from jaxrec import paths
from jaxrec.data import _io, amazon_book, bookcrossing, ml100k, ml1m_collm, ml1m_topk
from jaxrec.data.config import NAMES, get_data_config
from jaxrec.data.schema import Dataset, Split
from jaxrec.errors import JaxrecError

_LOADERS = {
    "ml1m_collm": ml1m_collm.load,
    "bookcrossing": bookcrossing.load,
    "amazon_book": amazon_book.load,
    "ml100k": ml100k.load,
    "ml1m_topk": ml1m_topk.load,
}

__all__ = ["Dataset", "Split", "NAMES", "get_data_config", "load_dataset", "load_split_file"]


def load_dataset(data_cfg) -> Dataset:
  """Loads (building and caching when needed) the dataset that `data_cfg` names, then applies its row budgets."""
  if data_cfg.name not in _LOADERS:
    raise JaxrecError(f"config data.name={data_cfg.name!r}; expected one of {', '.join(_LOADERS)}")
  root = paths.data_root(data_cfg.root)
  ds = _LOADERS[data_cfg.name](data_cfg, root)
  for name, sp in list(ds.splits.items()):
    cap = data_cfg.max_train_rows if name == "train" else data_cfg.max_eval_rows
    keep = _io.cap_rows(len(sp), cap, data_cfg.seed)
    if keep is not None:
      # train_items_by_user stays the full train split's: seen items are masked whether or not a budget kept them.
      ds.splits[name] = sp.take(keep)
  return ds


def load_split_file(data_cfg, path) -> Split:
  """A split file in the dataset's own format, read as the dataset's own splits are (`launch/evaluate.py --split`):
  CoLLM's ML-1M parquet."""
  import pathlib

  path = pathlib.Path(path)
  if data_cfg.name == "ml1m_collm" and path.suffix == ".parquet":
    return ml1m_collm._read_parquet(path, int(data_cfg.max_history))[0]  # pylint: disable=protected-access
  raise JaxrecError(f"--split={path}: reading split files of dataset {data_cfg.name!r} is not supported; "
                    f"pass a split name instead")
