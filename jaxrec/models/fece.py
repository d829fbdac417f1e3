"""CoLLM's collaborative-embedding mapper ("FECE") and the slot replacement that feeds its output to the LLM.

The mapper is CoLLM's `llama_proj` (github zyang1580/CoLLM, minigpt4rec_v2.py): Linear(d, f·d) → ReLU →
Linear(f·d, D·n), f = `proj_mid_times` (10 in CoLLM's configs), D the LLM's hidden size, n = `proj_token_num`. One
mapper serves both the user and the item vector, as in CoLLM. It is written as pure functions over a params pytree
`{'fc1': {'kernel': [d, f·d], 'bias': [f·d]}, 'fc2': {'kernel': [f·d, n·D], 'bias': [n·D]}}` initialised as
PyTorch's `nn.Linear` (U(±1/sqrt(fan_in)) for weights and biases), so a run starts where CoLLM's does.

`replace_slots` writes the mapped vectors into `inputs_embeds` at the `<UserID>` / `<TargetItemID>` placeholder
positions that `jaxrec.data.prompts` reports (-1 = no slot) and leaves every other row untouched.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array


def init_mapper(rng: Array, in_dim: int, hidden_size: int, proj_token_num: int = 1,
                hidden_factor: int = 10) -> dict[str, Any]:
  """Fresh mapper params (float32) for CF vectors of size `in_dim` → `proj_token_num` LLM embeddings."""
  mid, out = in_dim * hidden_factor, hidden_size * proj_token_num
  k1, k2, k3, k4 = jax.random.split(rng, 4)

  def uniform(key, shape, fan_in):
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)

  return {"fc1": {"kernel": uniform(k1, (in_dim, mid), in_dim), "bias": uniform(k2, (mid,), in_dim)},
          "fc2": {"kernel": uniform(k3, (mid, out), mid), "bias": uniform(k4, (out,), mid)}}


def apply_mapper(params: dict[str, Any], x: Array, proj_token_num: int = 1) -> Array:
  """CF vectors x [B, d] → LLM token embeddings [B, n, D] (float32)."""
  x = x.astype(jnp.float32)
  h = jax.nn.relu(x @ params["fc1"]["kernel"] + params["fc1"]["bias"])  # [B, f·d]
  y = h @ params["fc2"]["kernel"] + params["fc2"]["bias"]  # [B, n·D]
  return y.reshape(x.shape[0], proj_token_num, -1)  # [B, n, D]


def replace_slots(embeds: Array, vectors: Array, positions: Array) -> Array:
  """`embeds` [B, T, D] with row b, position positions[b, k] replaced by vectors[b, k] [B, n, D].

  Positions < 0 (the template has no such slot, or a padded batch row) are skipped: they are sent out of range and
  the scatter drops them, so nothing else is written. Gradients flow to `vectors` at the written slots only.
  """
  b, t = embeds.shape[:2]
  pos = jnp.where(positions < 0, t, positions)  # [B, n]; t is out of range → dropped
  rows = jnp.broadcast_to(jnp.arange(b)[:, None], pos.shape)  # [B, n]
  return embeds.at[rows, pos].set(vectors.astype(embeds.dtype), mode="drop")  # [B, T, D]
