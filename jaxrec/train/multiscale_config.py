"""Shared pieces of configs/ml1m_multiscale.py and configs/ml100k_multiscale.py.

`get_config(arg)` passes its arg here: comma-separated tokens, 'tiny' (a random 3-layer LLM, 8 users, 2 steps:
tests) and at most one variant, the ablations of the issue at the same budget:

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

from jaxrec.errors import JaxrecError
from jaxrec.multiscale.config import model_config
from jaxrec.train.config import stage_config
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


def parse_arg(arg: str | None) -> tuple[bool, str]:
  """(tiny, variant)."""
  tokens = [t for t in (arg or "").replace(":", ",").split(",") if t]
  unknown = [t for t in tokens if t != "tiny" and t not in VARIANTS]
  if unknown:
    raise JaxrecError(f"config arg {arg!r}: unknown token {unknown[0]!r}; expected 'tiny' and/or one of "
                      f"{sorted(v for v in VARIANTS if v)}")
  variants = [t for t in tokens if t in VARIANTS]
  if len(variants) > 1:
    raise JaxrecError(f"config arg {arg!r}: more than one variant ({', '.join(variants)})")
  return "tiny" in tokens, (variants[0] if variants else "")


def base_config(data_name: str, arg, *, budget: dict, keep_layers: int, lr: float, num_epochs: int,
                batch_size: int, eval_every: int = -1, max_steps: int = -1, warmup_steps: int = 20,
                model: dict | None = None) -> ml_collections.ConfigDict:
  """A one-stage config: adapters, coupling, pooling, fusion and heads train; early stopping on valid NDCG@10."""
  from jaxrec.data import get_data_config

  tiny, variant = parse_arg(arg)
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = get_data_config(data_name)
  config.model = model_config(keep_layers=keep_layers)
  config.model.update_from_flattened_dict(flatten(model or {}, sep="."))
  config.budget = ml_collections.ConfigDict(dict(budget))
  config.batch_size, config.eval_batch_size, config.eval_item_chunk = batch_size, 64, 256
  config.log_every, config.checkpoint_every = 10, 200
  if tiny:
    config.model.llm = "random"
    config.model.update_from_flattened_dict({"user.max_history": 5, "item.max_tokens": 12, "loss.n_negatives": 8,
                                             "proj_dim": 16})
    config.budget = ml_collections.ConfigDict(dict(train_users=8, eval_users=8, rows_per_user=2))
    config.batch_size, config.eval_batch_size, config.eval_item_chunk = 8, 16, 512
    config.log_every, config.checkpoint_every = 2, 100
    lr, num_epochs, max_steps, eval_every = 3e-3, 1, 2, 2
  config.model.update_from_flattened_dict(flatten(VARIANTS[variant], sep="."))
  if config.model.scales.num == 1:
    config.model.align.lam = 0.0  # nothing to couple
  config.stages = [stage_config(
      name="multiscale", trainable=list(TRAINABLE),
      optimizer=dict(lr=lr, weight_decay=0.0, warmup_steps=0 if tiny else warmup_steps, schedule="cosine", grad_clip=1.0),
      num_epochs=num_epochs, max_steps=max_steps, eval_every=eval_every,
      early_stopping=dict(metric="ndcg@10", mode="max", patience=3))]
  config.eval = ml_collections.ConfigDict(dict(kind="topk", split="valid", final_splits=["valid"], ks=[10, 20]))
  # Only the abstract of the paper was readable offline; its Table 1 (ML-1M) numbers go in report.paper when known.
  config.report = ml_collections.ConfigDict(dict(baselines={}, paper={}, paper_source=PAPER))
  return config
