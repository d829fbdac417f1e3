"""Shared pieces of the CF baseline configs (configs/baselines/*.py): the arg, the data section, the one-stage
recipe and the `tiny` overlay. Each baseline file shows its own model and optimiser values.

The arg (`jaxrec.config_util.parse_arg`): one dataset ('ml1m' default, 'bookcrossing', 'ml100k', 'amazon_book',
'ml1m_topk', 'synthetic'), 'tiny' (a few hundred rows, a few steps: tests) and 'topk': implicit full-catalogue
top-K instead of CTR (BPR on the positive rows, validation P / R / NDCG / Coverage @10, 20 with training items
masked, early stopping on NDCG@10), the multi-scale recommender's protocol (e.g. `mf.py:ml100k,topk`; add
`--config.eval.users=300` to evaluate on the 300 users configs/ml1m_multiscale.py samples).
"""

from __future__ import annotations

import ml_collections

from jaxrec.config_util import parse_arg
from jaxrec.train.config import stage_config

DATASETS = {"ml1m": "ml1m_collm", "bookcrossing": "bookcrossing", "ml100k": "ml100k", "amazon_book": "amazon_book",
            "ml1m_topk": "ml1m_topk", "synthetic": "synthetic"}
_TOKENS = {v: k for k, v in DATASETS.items()}  # jaxrec.data name → dataset token


def parse(arg: str | None) -> ml_collections.ConfigDict:
  """The arg of a baseline config; a jaxrec.data name (e.g. 'ml1m_collm') is accepted for its dataset token."""
  arg = ",".join(_TOKENS.get(t, t) for t in (arg or "").replace(":", ",").split(",") if t)
  return parse_arg(arg, dataset="ml1m", tiny=False, topk=False, choices={"dataset": tuple(DATASETS)})


def data_config(dataset: str) -> ml_collections.ConfigDict:
  if dataset == "synthetic":
    return ml_collections.ConfigDict(dict(name="synthetic", n_users=300, n_items=200, rows_per_user=20,
                                          max_history=10, seed=0))
  from jaxrec.data import get_data_config
  cfg = get_data_config(DATASETS[dataset])
  if dataset == "bookcrossing":
    cfg.train_shots = -1  # CF baselines use the whole pool outside `valid`
  cfg.max_history = min(cfg.max_history, 20)  # SASRec / DIN: 20 most recent items (CPU budget)
  return cfg


def base_config(arg, *, model: dict, lr: float | None = None, weight_decay: float = 0.0, num_epochs: int = 1,
                batch_size: int = 1024, patience: int = 5) -> ml_collections.ConfigDict:
  """The one-stage recipe of every baseline: AdamW + cosine over `num_epochs`, validation each epoch, early stopping
  (CTR: AUC; 'topk': BPR loss, NDCG@10); no stage when `lr` is None (a model fitted in closed form). `arg` is the
  config file's arg (string) or its `parse` result."""
  arg = parse(arg) if not isinstance(arg, ml_collections.ConfigDict) else arg
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = data_config(arg.dataset)
  config.model = ml_collections.ConfigDict({"family": "cf", "loss": "bpr" if arg.topk else "bce", "n_negatives": 1,
                                            **model})
  config.batch_size = batch_size
  config.eval_batch_size = 4096
  config.final_eval_rows = -1  # final metrics on every row (data.max_eval_rows: the early-stopping sample)
  config.log_every = 20
  config.checkpoint_every = 200
  config.stages = [] if lr is None else [stage_config(
      name="cf", trainable=["params/.*"],
      optimizer=dict(lr=lr, weight_decay=weight_decay, warmup_steps=20, schedule="cosine"),
      num_epochs=num_epochs, max_steps=-1, eval_every=-1,
      early_stopping=dict(metric="ndcg@10" if arg.topk else "auc", mode="max", patience=patience))]
  if arg.topk:
    splits = ["valid"]
  else:
    splits = ["valid", "valid_small"] if arg.dataset in ("ml1m", "ml100k", "amazon_book") else ["valid"]
  config.eval = ml_collections.ConfigDict(dict(kind="topk" if arg.topk else "ctr", split="valid",
                                               final_splits=tuple(splits), ks=(10, 20), users=-1))
  return tiny(config) if arg.tiny else config


def tiny(config) -> ml_collections.ConfigDict:
  """The `tiny` overlay of a CF config: a few hundred rows, two epochs of at most 6 steps (tests)."""
  if config.data.name == "synthetic":
    config.data.n_users, config.data.n_items = 60, 40
  else:
    config.data.max_train_rows, config.data.max_eval_rows = 512, 256
    config.final_eval_rows = 256  # tests: the final figures on 256 rows too
  config.batch_size, config.eval_batch_size = 64, 256
  config.log_every, config.checkpoint_every = 5, 10
  for stage in config.stages:
    stage.optimizer.warmup_steps = 0
    stage.num_epochs, stage.max_steps, stage.eval_every = 2, 6, 3
  return config
