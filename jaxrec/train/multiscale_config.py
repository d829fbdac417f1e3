"""Shared pieces of configs/ml1m_multiscale.py and configs/ml100k_multiscale.py: the arg, the defaults, the
ablation variants and the `tiny` overlay. The recipe (budget, model, stage, optimiser) is written out in
configs/ml1m_multiscale.py.

The arg (`jaxrec.config_util.parse_arg`): 'tiny' (a random 3-layer LLM, 8 users, 2 steps: tests), 'long' (about an
hour on 2 CPU cores: every training user, `long`) and at most one variant, the ablations of the issue at the same
budget:

  single  plain single-scale LoRA (K = 1: one group, the whole history at the top layer)
  k1, k2, k3   K scales (k3 is the default)
  lam0    λ = 0: independent per-group LoRA
  mean    mean instead of attention fusion
  beta0   β = 0: no cross-scale consistency term
  bpr     BPR instead of sampled softmax
  fixedm  M fixed to the identity
  nocenter  neither centring nor popularity prior: the first runs' model, whose top-K collapsed onto a few items
  noprior   centred, no popularity prior (γ = 0)
"""

from __future__ import annotations

import ml_collections

from jaxrec.config_util import parse_arg
from jaxrec.tree import flatten

VARIANTS = {
    "": {},
    "single": {"scales": {"num": 1}},
    "k1": {"scales": {"num": 1}},
    "k2": {"scales": {"num": 2}},
    "k3": {"scales": {"num": 3}},
    "lam0": {"align": {"lam": 0.0}},
    "mean": {"fusion": {"kind": "mean"}},
    "beta0": {"loss": {"beta": 0.0}},
    "bpr": {"loss": {"rec": "bpr"}},
    "fixedm": {"align": {"m": "identity"}},
    "nocenter": {"center": False, "pop_prior": 0.0},
    "noprior": {"pop_prior": 0.0},
}
PAPER = ("\"Intelligent Recommendation Systems Using Multi-Scale LoRA Fine-Tuning and Large Language Models\", "
         "Preprints.org 202512.1413 v1, posted 2025-12-17")
TRAINABLE = ["lora/.*", "align/.*", "pool/.*", "fusion/.*", "head/.*", "item_embed/.*"]


def parse(arg: str | None) -> ml_collections.ConfigDict:
  """arg.tiny, arg.variant ('' = the full model)."""
  return parse_arg(arg, tiny=False, long=False, variant="", choices={"variant": tuple(v for v in VARIANTS if v)})


def defaults() -> ml_collections.ConfigDict:
  """What every multi-scale run shares: seed, evaluation batches, logging and checkpoint cadence, top-K protocol,
  the results.md labels."""
  return ml_collections.ConfigDict(dict(
      seed=0,
      eval_batch_size=64,  # users per scoring batch
      eval_item_chunk=256,  # item texts per encoding batch
      log_every=10,
      checkpoint_every=200,
      eval=dict(kind="topk", split="valid", final_splits=("valid",), ks=(10, 20)),
      # Only the abstract of the paper was readable offline; its Table 1 (ML-1M) numbers go in report.paper.
      report=dict(baselines={}, paper={}, paper_source=PAPER),
  ))


def finish(config, arg) -> ml_collections.ConfigDict:
  """The arg's variant, then its `long` and `tiny` overlays."""
  config.model.update_from_flattened_dict(flatten(VARIANTS[arg.variant], sep="."))
  if config.model.scales.num == 1:
    config.model.align.lam = 0.0  # nothing to couple
  if arg.long:
    config = long(config)
  return tiny(config) if arg.tiny else config


def long(config) -> ml_collections.ConfigDict:
  """The `long` overlay: every training user × their 6 latest positives (ML-1M: 36,240 rows, 2,265 steps of 16, one
  epoch; a step of 3 layers takes ~1.25 s alone on 2 CPU cores), validated on every user each 500 steps, so that
  metrics.jsonl holds the learning curve (NDCG@10 against steps) and early stopping keeps the best point."""
  config.budget.update(dict(train_users=-1, eval_users=-1, rows_per_user=6))
  for stage in config.stages:
    stage.num_epochs, stage.max_steps, stage.eval_every = 1, -1, 500
    stage.optimizer.warmup_steps = 50
  return config


def tiny(config) -> ml_collections.ConfigDict:
  """The `tiny` overlay (tests): a random 3-layer LLM (K = 3 scales need 3 layers), 8 users, 2 steps."""
  config.model.llm = "random"
  config.model.random_llm.num_layers = 3
  config.model.update_from_flattened_dict({"user.max_history": 5, "item.max_tokens": 12, "loss.n_negatives": 8,
                                           "proj_dim": 16})
  config.budget = ml_collections.ConfigDict(dict(train_users=8, eval_users=8, rows_per_user=2))
  config.batch_size, config.eval_batch_size, config.eval_item_chunk = 8, 16, 512
  config.log_every, config.checkpoint_every = 2, 100
  config.report.baselines = {}  # the configs' CF runs are not tiny
  for stage in config.stages:
    stage.optimizer.lr, stage.optimizer.warmup_steps = 3e-3, 0
    stage.num_epochs, stage.max_steps, stage.eval_every = 1, 2, 2
  return config
