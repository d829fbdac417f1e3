"""DIN (Zhou et al., 2018): target-aware attention pooling over the history, then an MLP.

interest(u, i) = sum_j a(h_j, q_i) * h_j with a(.) an MLP on [h, q, h - q, h * q] (no softmax, as in DIN), masked at
padding; logit = MLP([interest, q_i, interest * q_i, mean_j h_j]). The user is only its history, so unseen users are
served. Since the interest vector depends on the target, the exported user vector (`user_repr`) is the target-free
mean of the history embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxrec.cf import base


class _MLP(nn.Module):
  hidden: Sequence[int]

  @nn.compact
  def __call__(self, x):
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(1)(x)[..., 0]


class DIN(nn.Module):
  """Deep Interest Network on item-id histories; `n_users` is accepted for the shared constructor but unused."""

  n_users: int
  n_items: int
  embed_dim: int = 64
  max_len: int = 50
  attn_hidden: Sequence[int] = (80, 40)
  mlp_hidden: Sequence[int] = (200, 80)
  init_std: float = 0.1
  score_chunk: int = 512  # items per chunk in `score_all`, which runs the attention for every candidate

  uses_history = True

  def setup(self):
    self.item_embed = nn.Embed(self.n_items + 1, self.embed_dim,
                               embedding_init=nn.initializers.normal(self.init_std))
    self.attention = _MLP(tuple(self.attn_hidden))
    self.head = _MLP(tuple(self.mlp_hidden))

  def item_repr(self, items):
    return self.item_embed(items) * base.id_mask(items)[..., None]  # [..., D]

  def item_table(self):
    return self.item_repr(jnp.arange(self.n_items + 1))

  def _history(self, batch):
    history = batch["history"][:, -self.max_len:]  # [B, T]
    return self.item_repr(history), base.id_mask(history)  # [B, T, D], [B, T]

  def user_repr(self, batch, train: bool = False):
    h, m = self._history(batch)
    return (h * m[..., None]).sum(1) / jnp.maximum(m.sum(1, keepdims=True), 1.0)  # [B, D]

  def _logits(self, h, m, mean_h, q):
    """h [B, T, D], m [B, T], mean_h [B, D], q [B, C, D] → [B, C]."""
    hb = h[:, None]  # [B, 1, T, D]
    qb = jnp.broadcast_to(q[:, :, None], q.shape[:2] + h.shape[1:])  # [B, C, T, D]
    hb = jnp.broadcast_to(hb, qb.shape)
    a = self.attention(jnp.concatenate([hb, qb, hb - qb, hb * qb], -1)) * m[:, None]  # [B, C, T]
    interest = jnp.einsum("bct,bctd->bcd", a, hb)  # [B, C, D]
    mean_b = jnp.broadcast_to(mean_h[:, None], q.shape)  # [B, C, D]
    return self.head(jnp.concatenate([interest, q, interest * q, mean_b], -1))  # [B, C]

  def __call__(self, batch, items=None, train: bool = False):
    items = batch["item"] if items is None else items
    h, m = self._history(batch)
    mean_h = self.user_repr(batch)
    flat = items if items.ndim == 2 else items[:, None]  # [B, C]
    logits = self._logits(h, m, mean_h, self.item_repr(flat))
    logits = logits if items.ndim == 2 else logits[:, 0]
    return base.mask_padding_items(logits, items)

  def score_all(self, batch):
    h, m = self._history(batch)
    mean_h = self.user_repr(batch)
    table = self.item_table()  # [I + 1, D]
    chunks = []
    for lo in range(0, table.shape[0], self.score_chunk):
      q = jnp.broadcast_to(table[lo:lo + self.score_chunk][None], (h.shape[0],) + table[lo:lo + self.score_chunk].shape)
      chunks.append(self._logits(h, m, mean_h, q))
    return jnp.concatenate(chunks, 1).at[:, 0].set(base.PAD_LOGIT)  # [B, I + 1]
