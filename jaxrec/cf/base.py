"""The contract every CF model follows, and the pieces the four models share.

A CF model is a Flax linen module with:
  `__call__(batch, items=None, train=False) -> logits`: one logit per (user or history, item) pair. `items` defaults
      to `batch['item']` [B]; [B, C] scores C candidates per row. Item id 0 (padding) always gets `PAD_LOGIT`.
  `user_repr(batch) -> [B, D]`: the user vector (MF / LightGCN: from `batch['user']`, 0 = unknown user → zeros;
      SASRec / DIN: from the time-ordered `batch['history']`, so users unseen in training are served too).
  `item_table() -> [n_items + 1, D]`: every item's vector, row 0 (padding) zero.
  `score_all(batch) -> [B, n_items + 1]`: full-catalogue logits, column 0 = `PAD_LOGIT`.
Batches are dicts of arrays: `user` [B] int, `item` [B] int, `label` [B] float, `history` [B, T] int (left-padded
with 0, most recent last), `history_len` [B] int.
"""

from __future__ import annotations

import jax.numpy as jnp

# Logit given to padding id 0: sigmoid(-1e9) = 0, so a padded item never ranks and never counts as a positive.
PAD_LOGIT = -1e9


def id_mask(ids):
  """1.0 where `ids` is a real id, 0.0 at padding / unknown (id 0). Shape of ids."""
  return (ids != 0).astype(jnp.float32)


def mask_padding_items(logits, items):
  """Forces the logit of item id 0 to PAD_LOGIT. logits and items share a shape."""
  return jnp.where(items == 0, PAD_LOGIT, logits)


def dot_scores(user_vec, item_vec):
  """user_vec [B, D] against item_vec [B, D] (→ [B]) or [B, C, D] (→ [B, C])."""
  if item_vec.ndim == 2:
    return jnp.sum(user_vec * item_vec, axis=-1)  # [B]
  return jnp.einsum("bd,bcd->bc", user_vec, item_vec)  # [B, C]


def dot_score_all(user_vec, table):
  """user_vec [B, D] against every item table [I + 1, D] → [B, I + 1], padding column masked."""
  logits = user_vec @ table.T  # [B, I + 1]
  return logits.at[:, 0].set(PAD_LOGIT)


def sq_norms(user_vec, item_vecs):
  """[B] ‖u‖² + Σ_c ‖v_c‖² for user_vec [B, D] and item_vecs [B, C, D]: a row's L2 penalty on its own embeddings."""
  return jnp.sum(user_vec ** 2, axis=-1) + jnp.sum(item_vecs ** 2, axis=(-2, -1))


def liked_history_mean(vectors, history, history_label=None):
  """The user vector of a user without a trained id (CoLLM's 'history' fallback): the mean of its liked history
  items' vectors, [B, H, d] → [B, d]. Liked = not padding and, where labels are given, label != 0 (BookCrossing
  histories also hold disliked books); a history with no liked item gives zeros. Used by CoLLM's CF source and by
  retrieval's query vectors alike."""
  liked = history != 0
  if history_label is not None:
    liked &= history_label != 0
  w = liked.astype(vectors.dtype)
  return jnp.sum(vectors * w[..., None], axis=1) / jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1.0)  # [B, d]

