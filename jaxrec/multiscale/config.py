"""The `config.model` section of the multi-scale LoRA recommender and its value checks.

  family: 'multiscale'           picks `jaxrec.train.multiscale_task` in jaxrec/train/task.py:FAMILIES
  llm, tokenizer, random_llm, dtype, keep_layers, remat, lora   the backbone (`jaxrec.llm.backbone`, shared with
                                 the LLM recommenders); LoRA is eq. 3, its targets must name the same projections
                                 in every layer (eq. 4 pairs them across layer groups)
  scales:
    num: K                       scales = layer groups (1 = plain single-scale LoRA)
    windows: [w_1..w_K]          history items each scale pools (0 = whole history); [] = `default_windows(K)`
    layers: [..]                 `hidden_states` index per scale; [] = the top layer of each group
    pooling: 'mean' | 'attention'
    norm: bool                   RMS-normalise each scale vector (depths differ in magnitude)
  align: lam (λ), m: 'learned' | 'identity'        eq. 4
  fusion: kind: 'attention' | 'mean', heads (h), key_dim (0 = D / h)    eq. 5
  user: max_history (items in the text), prefix, adapted (LoRA on the user tower too; False = eq. 1's frozen θ0)
  item: max_tokens, with_genres, prefix, pool: 'mean' | 'last', id_embed (add a learned id embedding)
  proj_dim: int                  user / item heads D → d (0: inner products in the LLM's hidden space)
  center: bool                   subtract fixed mean scale / item vectors (anisotropy; `jaxrec.models.multiscale`)
  pop_prior: γ                   ranking logits zᵀv / τ + γ log p̂(i), p̂ = training item frequency (0: off)
  score_norm: bool               unit-normalise user and item vectors (scores are then cosines; τ sets the scale)
  loss: rec 'softmax' | 'bpr', in_batch, n_negatives, temperature τ, beta β, align 'infonce' | 'cosine',
        align_temperature        eq. 6
"""

from __future__ import annotations

import ml_collections

from jaxrec.config_util import checker, update_strict
from jaxrec.llm import backbone
from jaxrec.multiscale.fusion import FUSIONS
from jaxrec.multiscale.losses import ALIGN_LOSSES, REC_LOSSES
from jaxrec.multiscale.pooling import POOLINGS

ALL_PROJ = (r"layers_\d+/self_attn/(q|k|v|o)_proj/kernel",)


def default_windows(k: int) -> list[int]:
  """Finer windows for lower groups: K=1 [all]; K=2 [1, all]; K=3 [1, 5, all]; more: 1, 2, 4, … then all."""
  if k == 1:
    return [0]
  if k == 3:
    return [1, 5, 0]
  return [2 ** i for i in range(k - 1)] + [0]


def model_config(**overrides) -> ml_collections.ConfigDict:
  """Defaults (K = 3 scales, λ = 0.1 learned M, 8-head attention fusion, sampled softmax, β = 0.1)."""
  cfg = ml_collections.ConfigDict({
      "family": "multiscale",
      **backbone.fields(),
      "scales": {"num": 3, "windows": [], "layers": [], "pooling": "attention", "norm": True},
      "align": {"lam": 0.1, "m": "learned"},
      "fusion": {"kind": "attention", "heads": 8, "key_dim": 0},
      "user": {"max_history": 10, "prefix": "A user watched, oldest first:", "adapted": True},
      "item": {"max_tokens": 24, "with_genres": True, "prefix": "A movie:", "pool": "mean", "id_embed": False},
      "proj_dim": 128,
      "center": True,
      "pop_prior": 1.0,
      "score_norm": True,
      "loss": {"rec": "softmax", "in_batch": True, "n_negatives": 64, "temperature": 0.1, "beta": 0.1,
               "align": "infonce", "align_temperature": 0.1},
  })
  update_strict(cfg, overrides, "config.model")
  return cfg


_check = checker("config.model")


def windows(model_cfg) -> list[int]:
  k = int(model_cfg.scales.num)
  return [int(w) for w in model_cfg.scales.windows] or default_windows(k)


def validate(m) -> None:
  """One-line JaxrecError naming the first impossible value of a multi-scale `config.model`."""
  k = m.scales.num
  _check(isinstance(k, int) and k >= 1, "scales.num", "an integer >= 1", k)
  w = list(m.scales.windows)
  _check(not w or (len(w) == k and all(isinstance(x, int) and x >= 0 for x in w)), "scales.windows",
         f"[] or {k} integers >= 0 (0 = whole history)", w)
  _check(not list(m.scales.layers) or len(m.scales.layers) == k, "scales.layers", f"[] or {k} layer indices",
         list(m.scales.layers))
  _check(m.scales.pooling in POOLINGS, "scales.pooling", f"one of {POOLINGS}", m.scales.pooling)
  _check(m.fusion.kind in FUSIONS, "fusion.kind", f"one of {FUSIONS}", m.fusion.kind)
  _check(isinstance(m.fusion.heads, int) and m.fusion.heads >= 1, "fusion.heads", "an integer >= 1", m.fusion.heads)
  _check(m.align.m in ("learned", "identity"), "align.m", "'learned' or 'identity'", m.align.m)
  _check(m.align.lam >= 0, "align.lam", "λ >= 0", m.align.lam)
  backbone.validate(m, min_rank=1)
  # its LoRA targets pick layers by index (per scale) and it reads per-layer hidden states: per-layer params only
  _check(not m.scan_layers, "scan_layers", "False (the multi-scale recommender adapts chosen layers)", m.scan_layers)
  _check(m.loss.rec in REC_LOSSES, "loss.rec", f"one of {REC_LOSSES}", m.loss.rec)
  _check(m.loss.align in ALIGN_LOSSES, "loss.align", f"one of {ALIGN_LOSSES}", m.loss.align)
  _check(m.loss.beta >= 0, "loss.beta", "β >= 0", m.loss.beta)
  _check(m.loss.temperature > 0, "loss.temperature", "τ > 0", m.loss.temperature)
  _check(m.loss.n_negatives >= 0 and (m.loss.in_batch or m.loss.n_negatives > 0), "loss.n_negatives",
         "an integer >= 0 (> 0 without in-batch negatives)", m.loss.n_negatives)
  _check(m.item.pool in ("mean", "last"), "item.pool", "'mean' or 'last'", m.item.pool)
  _check(m.user.max_history >= 1, "user.max_history", "an integer >= 1", m.user.max_history)
  _check(m.item.max_tokens >= 1, "item.max_tokens", "an integer >= 1", m.item.max_tokens)
  _check(isinstance(m.center, bool), "center", "True or False", m.center)
  _check(m.pop_prior >= 0, "pop_prior", "γ >= 0", m.pop_prior)
  _check(m.proj_dim >= 0, "proj_dim", "an integer >= 0", m.proj_dim)
