"""Eq. 2, multi-scale pooling: `H^(s_k) = Pool_{s_k}(H)`, one vector per scale from the backbone's hidden states.

Interpretation (config, documented in `jaxrec.models.multiscale`): the decoder's L layers are cut into K contiguous
groups, lower groups first (`layer_groups`). Scale k reads the hidden states after the TOP layer of group k
(`scale_layers`; index into the decoder's `hidden_states` tuple, whose entry 0 is the embeddings and entry l the
output of layer l - 1) and pools them over a window of the history: the tokens of the last `w_k` history items
(w_k <= 0: the whole history). Lower groups read finer windows by default (the last item, the last few, all).

Every token carries a segment id [B, T]: the rank of the history item it belongs to counted from the most recent
(0 = the last item), or -1 for prompt / padding tokens. Window mask of scale k:

  m_k[b, t] = (seg[b, t] >= 0) and (w_k <= 0 or seg[b, t] < w_k)

Pooling over the masked tokens:
  mean:       H^(s_k) = Σ_t m_k[t] h_t / Σ_t m_k[t]
  attention:  H^(s_k) = Σ_t softmax_t(q_kᵀ h_t / sqrt(D) | m_k) h_t,   with a learned query q_k per scale
A window holding no item token (a user without history) falls back to all real tokens (`attention_mask`), so the
vector is never a zero of the mean's 0 / 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
POOLINGS = ("mean", "attention")


def layer_groups(num_layers: int, k: int) -> list[tuple[int, int]]:
  """K contiguous [start, end) layer ranges covering 0..L, lower first, sizes differing by at most one."""
  if not 1 <= k <= num_layers:
    raise ValueError(f"cannot cut {num_layers} layers into {k} groups")
  bounds = np.linspace(0, num_layers, k + 1).round().astype(int)
  return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def scale_layers(num_layers: int, k: int, layers: Sequence[int] | None = None) -> list[int]:
  """`hidden_states` index read by each scale: the top layer of group k (= its end), or the given indices."""
  if layers:
    out = [int(x) if int(x) >= 0 else num_layers + 1 + int(x) for x in layers]  # -1 = the last (normed) state
    if len(out) != k or any(not 0 <= x <= num_layers for x in out):
      raise ValueError(f"scale layers {list(layers)}: expected {k} indices in 0..{num_layers}")
    return out
  return [end for _, end in layer_groups(num_layers, k)]


def window_mask(segment: Array, window: int, attention_mask: Array | None = None) -> Array:
  """[B, T] float mask of the tokens of the last `window` items (all items when window <= 0), with the fallback
  to `attention_mask` for rows that have no item token."""
  m = segment >= 0
  if window > 0:
    m = m & (segment < window)
  m = m.astype(jnp.float32)  # [B, T]
  if attention_mask is not None:
    empty = jnp.sum(m, axis=-1, keepdims=True) == 0  # [B, 1]
    m = jnp.where(empty, attention_mask.astype(jnp.float32), m)
  return m


def mean_pool(h: Array, mask: Array) -> Array:
  """h [B, T, D], mask [B, T] → [B, D], the mean over masked tokens (0 for a row without any)."""
  w = mask / jnp.maximum(jnp.sum(mask, axis=-1, keepdims=True), 1.0)  # [B, T]
  return jnp.einsum("bt,btd->bd", w, h.astype(jnp.float32))


def attention_pool(h: Array, mask: Array, query: Array) -> Array:
  """h [B, T, D], mask [B, T], query [D] → [B, D]: softmax_t(qᵀh_t / sqrt(D)) over masked tokens."""
  h = h.astype(jnp.float32)
  logits = jnp.einsum("btd,d->bt", h, query) / math.sqrt(h.shape[-1])  # [B, T]
  logits = jnp.where(mask > 0, logits, -1e30)
  w = jax.nn.softmax(logits, axis=-1) * (jnp.sum(mask, -1, keepdims=True) > 0)  # [B, T]
  return jnp.einsum("bt,btd->bd", w, h)


def rms_normalize(x: Array, eps: float = 1e-6) -> Array:
  """x / rms(x) over the last axis: puts scales read from different depths on one footing (no parameters)."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def init_queries(rng: Array, k: int, dim: int) -> Array:
  """[K, D] attention-pooling queries; small, so pooling starts close to the mean."""
  return 0.02 * jax.random.normal(rng, (k, dim), jnp.float32)


def pool_scales(hidden_states: Sequence[Array], segment: Array, attention_mask: Array, layers: Sequence[int],
                windows: Sequence[int], kind: str = "mean", queries: Array | None = None) -> Array:
  """[B, K, D]: scale k pools `hidden_states[layers[k]]` over window `windows[k]` (eq. 2)."""
  out = []
  for k, (layer, window) in enumerate(zip(layers, windows)):
    mask = window_mask(segment, int(window), attention_mask)  # [B, T]
    h = hidden_states[layer]  # [B, T, D]
    out.append(mean_pool(h, mask) if kind == "mean" else attention_pool(h, mask, queries[k]))
  return jnp.stack(out, axis=1)  # [B, K, D]
