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
from jaxrec.data.sampling import sample_rows, validation_sample
from jaxrec.data.schema import Dataset, Split
from jaxrec.errors import JaxrecError

_LOADERS = {
    "ml1m_collm": ml1m_collm.load,
    "bookcrossing": bookcrossing.load,
    "amazon_book": amazon_book.load,
    "ml100k": ml100k.load,
    "ml1m_topk": ml1m_topk.load,
}

__all__ = ["Dataset", "Split", "NAMES", "get_data_config", "load_dataset", "load_split_file", "sample_rows",
           "validation_sample"]


def load_dataset(data_cfg) -> Dataset:
  """Loads (building and caching when needed) the dataset that `data_cfg` names, with its training budget applied
  (`max_train_rows`). Evaluation splits are whole: `max_eval_rows` is the early-stopping sample a training loop
  draws with `sample_rows` (the figures a run reports are computed on whole splits)."""
  if data_cfg.name not in _LOADERS:
    raise JaxrecError(f"config data.name={data_cfg.name!r}; expected one of {', '.join(_LOADERS)}")
  root = paths.data_root(data_cfg.root)
  ds = _LOADERS[data_cfg.name](data_cfg, root)
  if "train" in ds.splits:
    # train_items_by_user stays the full train split's: seen items are masked whether or not a budget kept them.
    ds.splits["train"] = sample_rows(ds.splits["train"], data_cfg.max_train_rows, data_cfg.seed)
  return ds


# dataset name → (reader of a split file in its own format, the file names it takes, what such a file is)
_SPLIT_READERS = {
    "ml1m_collm": (ml1m_collm.read_split, (".parquet",), "CoLLM's Parquet split (e.g. test.parquet)"),
    "ml100k": (ml100k.read_split, (".data", ".test", ".base", ".inter", ".tsv", ".txt"),
               "GroupLens' tab-separated user, item, rating, timestamp lines (u.data, u1.test) or RecBole's .inter"),
    "bookcrossing": (bookcrossing.read_split, (".json",), "TALLRec's records (its data/book/test.json)"),
    "amazon_book": (amazon_book.read_split, (".json", ".json.gz", ".jsonl", ".jsonl.gz"),
                    "Amazon review JSON lines (reviewerID, asin, overall, unixReviewTime)"),
}


def load_split_file(data_cfg, path, dataset: Dataset) -> Split:
  """A split file in the dataset's own format, read against `dataset` (its ids, histories, train split) as its own
  splits are (`launch/evaluate.py --split=FILE`): `_SPLIT_READERS` says which format each dataset takes. Ids the
  dataset never had stay beyond its own (see `schema.Split.item_text_extra`)."""
  import pathlib

  path = pathlib.Path(path)
  if data_cfg.name not in _SPLIT_READERS:
    raise JaxrecError(f"--split={path}: reading split files of dataset {data_cfg.name!r} is not supported; pass a "
                      f"split name instead ({', '.join(dataset.splits)})")
  read, suffixes, what = _SPLIT_READERS[data_cfg.name]
  if not path.name.endswith(suffixes):
    raise JaxrecError(f"--split={path}: expected {what} for dataset {data_cfg.name!r}, a file ending in "
                      f"{' / '.join(suffixes)}")
  return read(path, dataset, data_cfg)
