"""Losses on logits, shared by every model family: BCE for CTR labels, BPR and sampled softmax for implicit top-K.

Each returns a scalar mean over rows with weight > 0 (padding rows of a last batch get weight 0). Imports nothing
from jaxrec: the CF models and the multi-scale recommender (which builds its logits from vectors, with accidental
hits masked) call the same functions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


_DROPPED = -1e30  # a masked candidate's logit: exp() of it is 0 in float32


def _weighted_mean(x, weights):
  if weights is None:
    return jnp.mean(x)
  return jnp.sum(x * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def bce(logits, labels, weights=None):
  """Binary cross-entropy on logits [B] against {0, 1} labels [B]."""
  return _weighted_mean(optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)), weights)


def bpr(pos_logits, neg_logits, weights=None, neg_mask=None):
  """Bayesian personalised ranking: -log sigmoid(s_pos - s_neg), pos [B], neg [B] or [B, N] (averaged over N, or
  over the negatives where `neg_mask` [B, N] is True: a row without any contributes 0)."""
  if neg_logits.ndim == 2:
    per_pair = -jax.nn.log_sigmoid(pos_logits[:, None] - neg_logits)  # [B, N]
    if neg_mask is None:
      per_row = jnp.mean(per_pair, axis=1)
    else:
      keep = neg_mask.astype(per_pair.dtype)
      per_row = jnp.sum(per_pair * keep, axis=1) / jnp.maximum(jnp.sum(keep, axis=1), 1.0)
  else:
    per_row = -jax.nn.log_sigmoid(pos_logits - neg_logits)
  return _weighted_mean(per_row, weights)


def sampled_softmax(logits, weights=None, target=None, drop=None):
  """Softmax cross-entropy over [B, C] candidates: row b's positive is column target[b] (default 0); candidates
  where `drop` [B, C] is True (accidental hits) leave the softmax. Computed in float32."""
  logits = logits.astype(jnp.float32)
  if drop is not None:
    logits = jnp.where(drop, _DROPPED, logits)
  target = jnp.zeros(logits.shape[0], jnp.int32) if target is None else target
  per_row = optax.softmax_cross_entropy_with_integer_labels(logits, target)
  return _weighted_mean(per_row, weights)
