"""The multi-scale recommender's collaborative tower ('mscf'): item vectors from an LLM's multi-scale text encodings
beside id embeddings, trained over the whole interaction split like MF.

  t_i^(k)  ∈ R^D    item i's text pooled at the top of layer group k (consts 'item_text' [I + 1, K, D]: computed
                    once, before training, by `jaxrec.train.text_features` from a frozen decoder or from a trained
                    multi-scale run's adapted one; centred and RMS-normalised per scale)
  s_i^(k) = t_i^(k) A_k B_k                   per-scale low-rank map D → r → d, B_k = 0 at init (as LoRA's B):
                                              training starts from MF
  v_i = q_i + Σ_k α_k s_i^(k)                 cross-scale attention fusion (`jaxrec.multiscale.fusion`, h heads)
  logit(u, i) = ⟨p_u, v_i⟩                    p_u, q_i id embeddings (user 0 / item 0 embed to zeros)

Why: the multi-scale run trains the LLM on a few thousand rows and sees 5 history titles per user; ML-1M's
collaborative signal is in its ~800k interactions, which only a tower whose per-step cost is independent of the
LLM can use. The text encodings are data here (the `consts` collection, never trained), so a step costs one
[I + 1, K, D] × [K, D, r] product more than MF's. Why low rank: with full D × d maps (K · D = 1,728 inputs for
3,706 items) the text path memorised the training items (ML-1M: training loss below MF's from the first epoch,
validation NDCG@10 flat at 0.19 from epoch 5 while MF's rose past 0.23); r bounds it to r content factors a scale.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp

from jaxrec.cf import base
from jaxrec.cf.mf import MF
from jaxrec.multiscale import fusion as F


class MultiScaleCF(MF):
  """MF plus fused multi-scale text vectors on the item side (user side, scores and exports: MF's)."""

  n_scales: int = 3
  text_dim: int = 576
  heads: int = 8
  text_rank: int = 16

  def setup(self):
    super().setup()
    # A: unit-variance factors of RMS-normalised text; B = 0: the text path starts silent
    self.text_a = self.param("text_a", nn.initializers.normal(1.0 / math.sqrt(self.text_dim)),
                             (self.n_scales, self.text_dim, self.text_rank))
    self.text_b = self.param("text_b", nn.initializers.zeros, (self.n_scales, self.text_rank, self.embed_dim))
    self.fusion = self.param("fusion", lambda rng: F.init_fusion(rng, self.n_scales, self.embed_dim, self.heads))
    self.item_text = self.variable("consts", "item_text", jnp.zeros,
                                   (self.n_items + 1, self.n_scales, self.text_dim), jnp.float32)

  def text_repr(self, items):
    """[..., d] the fused text vector of `items` [...]."""
    t = jnp.take(self.item_text.value, items, axis=0)  # [..., K, D]
    r = jnp.einsum("...kD,kDr->...kr", t, self.text_a)  # [..., K, r]
    s = jnp.einsum("...kr,krd->...kd", r, self.text_b)  # [..., K, d]
    flat = s.reshape(-1, self.n_scales, self.embed_dim)  # [N, K, d]
    fused = F.fuse(flat, F.fusion_weights(self.fusion, flat))  # [N, d]
    return fused.reshape(*items.shape, self.embed_dim)

  def item_repr(self, items):
    return (self.item_embed(items) + self.text_repr(items)) * base.id_mask(items)[..., None]  # [..., d]

  def ego_sq_norms(self, batch, items):
    """[B] ‖p_u‖² + Σ_c ‖q_c‖² of the id embeddings (`CFModel`'s `reg`; the text maps are not in it)."""
    return base.sq_norms(self.user_repr(batch), MF.item_repr(self, items))
