"""Eq. 6, the training objective: `L = L_rec(Z, Y) + β L_align(H^(s_1), …, H^(s_K))`.

L_rec ranks each user's held-out positive item above negatives by inner product s(u, i) = z_uᵀ v_i / τ:
  'softmax' (sampled softmax): for row b with positive p_b, the candidates are the batch's positives (in-batch
            negatives, when `in_batch`) and N shared random items; candidates equal to p_b other than its own
            column are masked (accidental hits, also duplicate in-batch positives):
            L = -(1/B) Σ_b log( exp s(b, p_b) / Σ_{c unmasked} exp s(b, c) )
  'bpr':    L = (1/B) Σ_b mean_{n: item_n ≠ p_b} softplus(-(s(b, p_b) - s(b, n))) over the N random negatives.

L_align keeps the scale representations of one user consistent (u_k, the K per-scale vectors in score space):
  'cosine':  mean over pairs k < k' and rows of 1 - cos(u_k, u_k')
  'infonce': mean over pairs k < k' of the symmetric InfoNCE in the batch: the same user's other scale is the
             positive, other users' are negatives: logits_bc = cos(u_k[b], u_k'[c]) / τ_a,
             (CE(logits, diag) + CE(logitsᵀ, diag)) / 2
With K = 1 there is no pair and L_align = 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrec import losses

Array = jax.Array
REC_LOSSES = ("softmax", "bpr")
ALIGN_LOSSES = ("infonce", "cosine")


def rec_softmax(user: Array, pos: Array, neg: Array, pos_ids: Array, neg_ids: Array, temperature: float = 1.0,
                in_batch: bool = True) -> Array:
  """L_rec 'softmax': user / pos [B, d], neg [N, d], ids [B] / [N] → scalar (accidental hits dropped)."""
  b = user.shape[0]
  if in_batch:
    cand_ids = jnp.concatenate([pos_ids, neg_ids], 0)  # [B + N]
    logits = user @ jnp.concatenate([pos, neg], 0).T / temperature  # [B, B + N]; row b's positive in column b
    target = jnp.arange(b)
    hit = (cand_ids[None, :] == pos_ids[:, None]) & (jnp.arange(cand_ids.shape[0])[None, :] != target[:, None])
  else:
    s_pos = jnp.sum(user * pos, -1, keepdims=True)  # [B, 1]
    logits = jnp.concatenate([s_pos, user @ neg.T], 1) / temperature  # [B, 1 + N]; the positive in column 0
    target = jnp.zeros((b,), jnp.int32)
    hit = jnp.concatenate([jnp.zeros((b, 1), bool), neg_ids[None, :] == pos_ids[:, None]], 1)
  return losses.sampled_softmax(logits, target=target, drop=hit)


def rec_bpr(user: Array, pos: Array, neg: Array, pos_ids: Array, neg_ids: Array, temperature: float = 1.0) -> Array:
  """L_rec 'bpr': user / pos [B, d], neg [N, d] → scalar over the random negatives (accidental hits left out)."""
  s_pos = jnp.sum(user * pos, -1) / temperature  # [B]
  s_neg = user @ neg.T / temperature  # [B, N]
  return losses.bpr(s_pos.astype(jnp.float32), s_neg.astype(jnp.float32),
                    neg_mask=neg_ids[None, :] != pos_ids[:, None])


def _unit(x: Array) -> Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def align_loss(scales: Array, kind: str = "infonce", temperature: float = 0.1) -> Array:
  """scales [B, K, d] → scalar consistency loss between the scales of each user (0 when K = 1)."""
  k = scales.shape[1]
  if k < 2:
    return jnp.zeros((), jnp.float32)
  u = _unit(scales.astype(jnp.float32))  # [B, K, d]
  terms = []
  for i in range(k):
    for j in range(i + 1, k):
      if kind == "cosine":
        terms.append(jnp.mean(1.0 - jnp.sum(u[:, i] * u[:, j], -1)))
      else:
        logits = u[:, i] @ u[:, j].T / temperature  # [B, B]
        diag = jnp.arange(logits.shape[0])
        ce = lambda x: -jnp.mean(jax.nn.log_softmax(x, -1)[diag, diag])
        terms.append(0.5 * (ce(logits) + ce(logits.T)))
  return jnp.mean(jnp.stack(terms))
