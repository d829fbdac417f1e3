"""Losses on model logits: BCE for CTR labels, BPR and sampled softmax for implicit top-K.

Each returns a scalar mean over rows with weight > 0 (padding rows of a last batch get weight 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _weighted_mean(x, weights):
  if weights is None:
    return jnp.mean(x)
  return jnp.sum(x * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def bce(logits, labels, weights=None):
  """Binary cross-entropy on logits [B] against {0, 1} labels [B]."""
  return _weighted_mean(optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)), weights)


def bpr(pos_logits, neg_logits, weights=None):
  """Bayesian personalised ranking: -log sigmoid(s_pos - s_neg), pos [B], neg [B] or [B, N] (averaged over N)."""
  if neg_logits.ndim == 2:
    diff = pos_logits[:, None] - neg_logits  # [B, N]
    per_row = -jnp.mean(jax.nn.log_sigmoid(diff), axis=1)
  else:
    per_row = -jax.nn.log_sigmoid(pos_logits - neg_logits)
  return _weighted_mean(per_row, weights)


def sampled_softmax(logits, weights=None):
  """Softmax cross-entropy over [B, 1 + N] candidates whose column 0 is the positive."""
  per_row = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.zeros(logits.shape[0], jnp.int32))
  return _weighted_mean(per_row, weights)

