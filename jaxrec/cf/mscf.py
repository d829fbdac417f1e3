"""The multi-scale recommender's collaborative tower ('mscf'): item vectors from an LLM's multi-scale text encodings
beside id embeddings, trained over the whole interaction split like MF.

  t_i^(k)  ∈ R^D    item i's text pooled at the top of layer group k (consts 'item_text' [I + 1, K, D]: computed
                    once, before training, by `jaxrec.train.text_features` from a frozen decoder or from a trained
                    multi-scale run's adapted one; centred and RMS-normalised per scale)
  s_i^(k) = t_i^(k) A_k B_k                   per-scale low-rank map D → r → d, B_k = 0 at init (as LoRA's B):
                                              training starts from MF
  v_i = q_i + Σ_k α_k s_i^(k)                 cross-scale attention fusion (`jaxrec.multiscale.fusion`, h heads)
  logit(u, i) = ⟨p_u, v_i⟩                    p_u, q_i id embeddings (user 0 / item 0 embed to zeros)
  (with config.model.text_cold = n0 > 0, t_i is first scaled by sqrt(n0 / (n0 + n_i)), n_i item i's training rows:
  `jaxrec.cf._cold_weighted`, so the text weighs most where the id embedding has least data)

'mscf_gcn' (`MultiScaleGCN`) puts the same text path on LightGCN: item nodes start from q_i + Σ_k α_k s_i^(k) and are
smoothed over the user-item graph, e_u, e_i = mean over rounds 0..L of neighbour averaging, logit = ⟨e_u, e_i⟩.

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
from jaxrec.cf.lightgcn import LightGCN
from jaxrec.cf.mf import MF
from jaxrec.multiscale import fusion as F


def _setup_text(m) -> None:
  """The text path's parameters and constants (called from a module's `setup`)."""
  # A: unit-variance factors of RMS-normalised text; B = 0: the text path starts silent
  m.text_a = m.param("text_a", nn.initializers.normal(1.0 / math.sqrt(m.text_dim)),
                     (m.n_scales, m.text_dim, m.text_rank))
  m.text_b = m.param("text_b", nn.initializers.zeros, (m.n_scales, m.text_rank, m.embed_dim))
  m.fusion = m.param("fusion", lambda rng: F.init_fusion(rng, m.n_scales, m.embed_dim, m.heads))
  m.item_text = m.variable("consts", "item_text", jnp.zeros, (m.n_items + 1, m.n_scales, m.text_dim), jnp.float32)


def _text_repr(m, items):
  """[..., d] the fused text vector of `items` [...]."""
  t = jnp.take(m.item_text.value, items, axis=0)  # [..., K, D]
  r = jnp.einsum("...kD,kDr->...kr", t, m.text_a)  # [..., K, r]
  s = jnp.einsum("...kr,krd->...kd", r, m.text_b)  # [..., K, d]
  flat = s.reshape(-1, m.n_scales, m.embed_dim)  # [N, K, d]
  fused = F.fuse(flat, F.fusion_weights(m.fusion, flat))  # [N, d]
  return fused.reshape(*items.shape, m.embed_dim)


class _TextPath:
  """Mixed in before a CF module: its `setup` adds the text path (the module declares n_scales, text_dim, heads,
  text_rank)."""

  def setup(self):
    super().setup()
    _setup_text(self)


class MultiScaleCF(_TextPath, MF):
  """MF plus fused multi-scale text vectors on the item side (user side, scores and exports: MF's)."""

  n_scales: int = 3
  text_dim: int = 576
  heads: int = 8
  text_rank: int = 16

  def text_repr(self, items):
    return _text_repr(self, items)

  def item_repr(self, items):
    return (self.item_embed(items) + self.text_repr(items)) * base.id_mask(items)[..., None]  # [..., d]

  def ego_sq_norms(self, batch, items):
    """[B] ‖p_u‖² + Σ_c ‖q_c‖² of the id embeddings (`CFModel`'s `reg`; the text maps are not in it)."""
    return base.sq_norms(self.user_repr(batch), MF.item_repr(self, items))


class MultiScaleGCN(_TextPath, LightGCN):
  """The same text path on LightGCN ('mscf_gcn'): item nodes start from q_i + Σ_k α_k s_i^(k) and are smoothed over
  the user-item graph with the users' (`num_layers` rounds), so content reaches users through their neighbours and
  the graph's smoothing of id embeddings (LightGCN's coverage) is kept."""

  n_scales: int = 3
  text_dim: int = 576
  heads: int = 8
  text_rank: int = 16

  def ego_nodes(self):
    text = _text_repr(self, jnp.arange(self.n_items + 1))  # [I + 1, d]; item 0's node is zeroed by propagate
    return self.node_embed.at[self.n_users + 1:].add(text)  # [N, d]

  def ego_sq_norms(self, batch, items):
    """[B] ‖e⁰_u‖² + Σ_c ‖e⁰_c‖² with e⁰_c = q_c + text_c, the candidates' whole layer-0 vectors (`CFModel`'s `reg`):
    with L2 on the id part alone, the unregularised text maps took over and overfit (session 14: NDCG@10 peaked at
    epoch 3, then fell)."""
    ego = self.node_embed[items + self.n_users + 1] + _text_repr(self, items)  # [B, C, d]
    return base.sq_norms(self.node_embed[batch["user"]], ego)
