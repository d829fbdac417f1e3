"""SASRec (Kang & McAuley, 2018): causal self-attention over the time-ordered history.

The user vector is the encoder output at the last (most recent) position, logit = <h_u, q_i> with the item table
shared between input and output. Because the user is only its history, unseen users (every BookCrossing user) are
served. Histories are left-padded, so position embeddings are aligned to the end: position -1 = most recent.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxrec.cf import base


class _Block(nn.Module):
  embed_dim: int
  num_heads: int
  dropout: float

  @nn.compact
  def __call__(self, x, mask, train: bool):
    # Pre-LN transformer block (SASRec's released code normalises queries first as well).
    h = nn.LayerNorm()(x)
    h = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, qkv_features=self.embed_dim, dropout_rate=self.dropout,
        deterministic=not train)(h, h, mask=mask)
    x = x + nn.Dropout(self.dropout, deterministic=not train)(h)
    h = nn.LayerNorm()(x)
    h = nn.Dense(self.embed_dim)(nn.relu(nn.Dense(self.embed_dim)(h)))
    return x + nn.Dropout(self.dropout, deterministic=not train)(h)  # [B, T, D]


class SASRec(nn.Module):
  """History encoder; `n_users` is accepted for the shared constructor but unused."""

  n_users: int
  n_items: int
  embed_dim: int = 64
  num_layers: int = 2
  num_heads: int = 1
  max_len: int = 50
  dropout: float = 0.2
  init_std: float = 0.1

  uses_history = True

  def setup(self):
    init = nn.initializers.normal(self.init_std)
    self.item_embed = nn.Embed(self.n_items + 1, self.embed_dim, embedding_init=init)
    self.pos_embed = self.param("pos_embed", init, (self.max_len, self.embed_dim))
    self.blocks = [_Block(self.embed_dim, self.num_heads, self.dropout) for _ in range(self.num_layers)]
    self.final_norm = nn.LayerNorm()
    self.input_dropout = nn.Dropout(self.dropout)

  def item_repr(self, items):
    return self.item_embed(items) * base.id_mask(items)[..., None]  # [..., D]

  def item_table(self):
    return self.item_repr(jnp.arange(self.n_items + 1))

  def user_repr(self, batch, train: bool = False):
    history = batch["history"][:, -self.max_len:]  # [B, T], most recent last
    t = history.shape[1]
    valid = history != 0  # [B, T]
    x = self.item_repr(history) * jnp.sqrt(float(self.embed_dim)) + self.pos_embed[-t:]  # [B, T, D]
    x = self.input_dropout(x, deterministic=not train) * valid[..., None]
    causal = jnp.tril(jnp.ones((t, t), bool))  # [T, T]
    # Keys must be real items; each query also sees itself so an empty history never yields an all-masked row.
    mask = (causal[None] & valid[:, None, :]) | jnp.eye(t, dtype=bool)[None]  # [B, T, T]
    mask = mask[:, None]  # [B, 1, T, T] (broadcast over heads)
    for block in self.blocks:
      x = block(x, mask, train)
    return self.final_norm(x)[:, -1]  # [B, D]

  def __call__(self, batch, items=None, train: bool = False):
    items = batch["item"] if items is None else items
    logits = base.dot_scores(self.user_repr(batch, train), self.item_repr(items))
    return base.mask_padding_items(logits, items)

  def score_all(self, batch):
    return base.dot_score_all(self.user_repr(batch), self.item_table())
