"""Eq. 5, cross-scale attention fusion: the user representation Z from the K scale vectors.

  Z = Σ_k α_k H^(s_k),    α_k = softmax_k(qᵀ W_k H^(s_k))

With h heads (the paper reports h = 8 best) the hidden size D is cut into h chunks of D / h; head i has its own
query q_i ∈ R^{d_k} and per-scale keys W_k^i ∈ R^{D×d_k}, computes its own weights over the scales and fuses its
chunk:

  e[b, k, i] = q_iᵀ (W_k^i)ᵀ H^(s_k)_b / sqrt(d_k),   α[b, :, i] = softmax_k(e[b, :, i])
  Z_b[chunk i] = Σ_k α[b, k, i] H^(s_k)_b[chunk i]

so every head's weights sum to 1 over the scales and h = 1 is eq. 5 exactly. The 'mean' ablation fixes α_k = 1/K.
Parameters: {'w': [K, D, h, d_k], 'q': [h, d_k]}; W starts small, so fusion starts near the uniform mean.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxrec.errors import JaxrecError

Array = jax.Array
FUSIONS = ("attention", "mean")


def init_fusion(rng: Array, k: int, dim: int, heads: int, key_dim: int = 0) -> dict[str, Array]:
  """{'w': [K, D, h, d_k], 'q': [h, d_k]}; key_dim <= 0 means D / h."""
  if heads < 1 or dim % heads:
    raise JaxrecError(f"config.model.fusion.heads: {heads} does not divide the hidden size {dim}")
  dk = key_dim if key_dim > 0 else dim // heads
  rw, rq = jax.random.split(rng)
  return {"w": jax.random.normal(rw, (k, dim, heads, dk), jnp.float32) / math.sqrt(dim) * 0.1,
          "q": jax.random.normal(rq, (heads, dk), jnp.float32)}


def fusion_weights(params: dict[str, Array], scales: Array) -> Array:
  """scales [B, K, D] → α [B, K, h], a softmax over K for each (row, head)."""
  keys = jnp.einsum("bkd,kdhe->bkhe", scales.astype(jnp.float32), params["w"])  # [B, K, h, d_k]
  e = jnp.einsum("bkhe,he->bkh", keys, params["q"]) / math.sqrt(params["q"].shape[-1])  # [B, K, h]
  return jax.nn.softmax(e, axis=1)


def mean_weights(scales: Array, heads: int = 1) -> Array:
  """α = 1/K for every row and head: [B, K, h]."""
  b, k = scales.shape[:2]
  return jnp.full((b, k, heads), 1.0 / k, jnp.float32)


def fuse(scales: Array, alpha: Array) -> Array:
  """scales [B, K, D], α [B, K, h] → Z [B, D]: head i mixes its D / h chunk with its own weights."""
  b, k, d = scales.shape
  h = alpha.shape[-1]
  chunks = scales.astype(jnp.float32).reshape(b, k, h, d // h)  # [B, K, h, D/h]
  return jnp.einsum("bkh,bkhc->bhc", alpha, chunks).reshape(b, d)  # [B, D]
