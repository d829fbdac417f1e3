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
from jaxrec.multiscale import fusion as F


class MultiScaleCF(nn.Module):
  """MF plus fused multi-scale text vectors on the item side."""

  n_users: int
  n_items: int
  n_scales: int = 3
  text_dim: int = 576
  embed_dim: int = 128
  init_std: float = 0.1
  heads: int = 8
  text_rank: int = 16

  uses_history = False  # class constant: a trained user id, as MF

  def setup(self):
    init = nn.initializers.normal(self.init_std)
    self.user_embed = nn.Embed(self.n_users + 1, self.embed_dim, embedding_init=init)
    self.item_embed = nn.Embed(self.n_items + 1, self.embed_dim, embedding_init=init)
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

  def user_repr(self, batch, train: bool = False):
    user = batch["user"]
    return self.user_embed(user) * base.id_mask(user)[..., None]  # [B, d]

  def item_repr(self, items):
    return (self.item_embed(items) + self.text_repr(items)) * base.id_mask(items)[..., None]  # [..., d]

  def item_table(self):
    return self.item_repr(jnp.arange(self.n_items + 1))  # [I + 1, d]

  def __call__(self, batch, items=None, train: bool = False):
    items = batch["item"] if items is None else items
    logits = base.dot_scores(self.user_repr(batch, train), self.item_repr(items))
    return base.mask_padding_items(logits, items)

  def score_all(self, batch):
    return base.dot_score_all(self.user_repr(batch), self.item_table())

  def ego_sq_norms(self, batch, items):
    """[B] ‖p_u‖² + Σ_c ‖q_c‖² of the id embeddings (`CFModel`'s `reg`; the text projections are not in it)."""
    item = self.item_embed(items) * base.id_mask(items)[..., None]
    return base.sq_norms(self.user_repr(batch), item)
