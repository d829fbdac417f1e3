"""Shared pieces of the CF baseline configs (configs/baselines/*.py).

`get_config(arg)` in each baseline passes its arg here: comma-separated tokens, one dataset ('ml1m' default,
'bookcrossing', 'ml100k', 'ml1m_topk', 'synthetic'), optionally 'tiny' (a few hundred rows, a few steps: for
tests) and 'topk': implicit full-catalogue top-K instead of CTR (BPR on the positive rows, validation
P / R / NDCG / Coverage @10, 20 with training items masked, early stopping on NDCG@10), the multi-scale
recommender's protocol (e.g. `mf.py:ml100k,topk` beside configs/ml100k_multiscale.py; add
`--config.eval.users=300` to evaluate on the 300 users configs/ml1m_multiscale.py samples).
"""

from __future__ import annotations

import ml_collections

from jaxrec.errors import JaxrecError
from jaxrec.train.config import stage_config

DATASETS = {"ml1m": "ml1m_collm", "bookcrossing": "bookcrossing", "ml100k": "ml100k", "amazon_book": "amazon_book",
            "ml1m_topk": "ml1m_topk", "synthetic": "synthetic"}


def parse_arg(arg: str | None) -> tuple[str, bool]:
  """('ml1m' | 'bookcrossing' | 'synthetic', tiny)."""
  tokens = [t for t in (arg or "").replace(":", ",").split(",") if t]
  unknown = [t for t in tokens if t not in DATASETS and t != "tiny"]
  if unknown:
    raise JaxrecError(f"config arg {arg!r}: unknown token {unknown[0]!r}; expected one of "
                      f"{sorted(DATASETS)} and optionally 'tiny' (and 'topk')")
  names = [t for t in tokens if t in DATASETS]
  if len(names) > 1:
    raise JaxrecError(f"config arg {arg!r}: more than one dataset")
  return (names[0] if names else "ml1m"), "tiny" in tokens


def data_config(dataset: str, tiny: bool) -> ml_collections.ConfigDict:
  if dataset == "synthetic":
    return ml_collections.ConfigDict(dict(name="synthetic", n_users=60 if tiny else 300,
                                          n_items=40 if tiny else 200, rows_per_user=20, max_history=10, seed=0))
  from jaxrec.data import get_data_config
  cfg = get_data_config(DATASETS[dataset])
  if dataset == "bookcrossing":
    cfg.train_shots = -1  # CF baselines use the whole pool outside `valid`
  cfg.max_history = min(cfg.max_history, 20)  # SASRec / DIN: 20 most recent items (CPU budget)
  if tiny:
    cfg.max_train_rows, cfg.max_eval_rows = 512, 256
  return cfg


def base_config(arg, model: dict, lr: float, weight_decay: float, num_epochs: int, batch_size: int = 1024,
                patience: int = 5) -> ml_collections.ConfigDict:
  """A one-stage CTR config: AdamW + cosine, validation AUC each epoch, early stopping on it ('topk' in arg: BPR,
  validation top-K, early stopping on NDCG@10)."""
  tokens = [t for t in (arg or "").replace(":", ",").split(",") if t]
  topk = "topk" in tokens
  dataset, tiny = parse_arg(",".join(t for t in tokens if t != "topk"))
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = data_config(dataset, tiny)
  config.model = ml_collections.ConfigDict(dict(family="cf", loss="bce", n_negatives=1, **model))
  config.batch_size = 64 if tiny else batch_size
  config.eval_batch_size = 256 if tiny else 4096
  config.log_every = 5 if tiny else 20
  config.checkpoint_every = 10 if tiny else 200
  config.stages = [stage_config(
      name="cf", trainable=["params/.*"],
      optimizer=dict(lr=lr, weight_decay=weight_decay, warmup_steps=0 if tiny else 20, schedule="cosine"),
      num_epochs=2 if tiny else num_epochs, max_steps=6 if tiny else -1, eval_every=3 if tiny else -1,
      early_stopping=dict(metric="auc", mode="max", patience=patience))]
  splits = ["valid", "valid_small"] if dataset in ("ml1m", "ml100k", "amazon_book") else ["valid"]
  config.eval = ml_collections.ConfigDict(dict(kind="ctr", split="valid", final_splits=splits, ks=[10, 20], users=-1))
  if topk:
    config.model.loss = "bpr"
    config.stages[0].early_stopping.metric = "ndcg@10"
    config.eval = ml_collections.ConfigDict(dict(kind="topk", split="valid", final_splits=["valid"], ks=[10, 20],
                                                 users=-1))
  return config


# The tuned baselines (chosen on ML-1M validation; see each configs/baselines/<name>.py docstring for figures).
BASELINES = {
    "mf": dict(model=dict(name="mf", embed_dim=256, init_std=0.1), lr=1e-2, weight_decay=3.0, num_epochs=50),
    "lightgcn": dict(model=dict(name="lightgcn", embed_dim=64, num_layers=2, init_std=0.1), lr=1e-3,
                     weight_decay=1.0, num_epochs=50),
    "sasrec": dict(model=dict(name="sasrec", embed_dim=64, num_layers=2, num_heads=1, max_len=-1, dropout=0.2,
                              init_std=0.1), lr=1e-3, weight_decay=1e-2, num_epochs=10),
    "din": dict(model=dict(name="din", embed_dim=64, max_len=-1, attn_hidden=[80, 40], mlp_hidden=[200, 80],
                           init_std=0.1), lr=1e-3, weight_decay=1e-2, num_epochs=15),
}
_DATA_NAMES = {v: k for k, v in DATASETS.items()}  # jaxrec.data name → baseline dataset token


def baseline_config(name: str, dataset: str, tiny: bool = False) -> ml_collections.ConfigDict:
  """The tuned baseline `name` on `dataset` (a token of DATASETS or a jaxrec.data name)."""
  if name not in BASELINES:
    raise JaxrecError(f"CF baseline {name!r}: expected one of {sorted(BASELINES)}")
  token = _DATA_NAMES.get(dataset, dataset)
  if token not in DATASETS:
    raise JaxrecError(f"CF baseline on {dataset!r}: expected one of {sorted(DATASETS)} or {sorted(_DATA_NAMES)}")
  return base_config(f"{token},tiny" if tiny else token, **BASELINES[name])
