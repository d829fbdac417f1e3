"""A Llama-family decoder in Flax linen (Llama 2/3, Vicuna, SmolLM2, Qwen2), with hooks for functional LoRA.

Parameters are a plain pytree whose paths mirror Hugging Face names (`layers_3/self_attn/q_proj/kernel`), kernels
stored (in, out). Every parameter carries logical axis names (see `jaxrec.sharding`) so one rules table shards it.

LoRA is not baked in: a `Linear` reads optional adapter factors from the separate variable collection `lora`
(`{'a': [in, r], 'b': [r, out]}` at the same path as its kernel) and adds `scale * dropout(x) @ a @ b`, which is
exactly PEFT's forward. Without the collection the model is the plain base model. See `jaxrec.llm.lora`.

Numerics follow transformers: RMSNorm and softmax in float32, rotary tables in float32 then cast, masked scores
set to the dtype's minimum (so fully padded rows stay finite), positions counted from the attention mask so
left padding is handled.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.llm.config import LlamaConfig

if TYPE_CHECKING:
  from jaxrec.llm import lora

Array = jax.Array
_init = nn.initializers.normal(stddev=0.02)


@jax.custom_vjp
def _f32_acc_dot(x: Array, w: Array) -> Array:
  """x [..., in] @ w [in, out] with float32 accumulation, result in x's dtype; its backward does the same."""
  return jax.lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())), preferred_element_type=jnp.float32
                             ).astype(x.dtype)


def _f32_acc_fwd(x, w):
  return _f32_acc_dot(x, w), (x, w)


def _f32_acc_bwd(res, g):
  x, w = res
  dx = jax.lax.dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())), preferred_element_type=jnp.float32)  # [..., in]
  x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])  # [N, in], [N, out]
  dw = jax.lax.dot_general(x2, g2, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)  # [in, out]
  return dx.astype(x.dtype), dw.astype(w.dtype)  # XLA drops dw when nothing reads it (frozen kernels)


_f32_acc_dot.defvjp(_f32_acc_fwd, _f32_acc_bwd)


def _dot(x: Array, w: Array, dtype) -> Array:
  """x @ w in the compute dtype. Below float32, both passes accumulate in float32: XLA's CPU backend runs such bf16
  dots ~2.4x faster than bf16-accumulating ones (182 vs 75 GFLOP/s at 512x576x1536) and they are more exact. A
  float32 dot stays a plain `jnp.dot`, which XLA fuses better than the explicit form (measured)."""
  if jnp.dtype(dtype) == jnp.float32:
    return jnp.dot(x.astype(dtype), w.astype(dtype))
  return _f32_acc_dot(x.astype(dtype), w.astype(dtype))


def rope_inv_freq(cfg: LlamaConfig) -> np.ndarray:
  """Rotary inverse frequencies [head_dim/2], with Llama-3 or linear scaling when the checkpoint asks for it."""
  dim = cfg.head_dim
  inv = 1.0 / (cfg.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
  sc = cfg.rope_scaling_dict
  kind = sc.get("rope_type")
  if kind == "linear":
    inv = inv / float(sc["factor"])
  elif kind == "llama3":
    factor, lo, hi = float(sc["factor"]), float(sc["low_freq_factor"]), float(sc["high_freq_factor"])
    old = float(sc["original_max_position_embeddings"])
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > old / lo, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old / hi) & (wavelen <= old / lo)
    inv = np.where(medium, smoothed, scaled)
  return inv.astype(np.float32)


def rope_tables(positions: Array, inv_freq: np.ndarray, dtype) -> tuple[Array, Array]:
  """cos, sin [B, T, 1, Dh] for half-split ("rotate_half") rotary embedding, computed once for all layers."""
  freqs = positions[..., None].astype(jnp.float32) * inv_freq  # [B, T, Dh/2]
  emb = jnp.concatenate([freqs, freqs], axis=-1)  # [B, T, Dh]
  return jnp.cos(emb).astype(dtype)[:, :, None, :], jnp.sin(emb).astype(dtype)[:, :, None, :]


def apply_rope(x: Array, cos: Array, sin: Array) -> Array:
  """Rotary embedding as transformers' Llama (half-split). x: [B, T, H, Dh]; cos/sin: [B, T, 1, Dh]."""
  x1, x2 = jnp.split(x, 2, axis=-1)
  return x * cos + jnp.concatenate([-x2, x1], axis=-1) * sin


_Q_BLOCK = 64  # queries per block in 'causal_blocks' attention


def _attend(q: Array, k: Array, v: Array, allowed: Array, dtype) -> Array:
  """softmax(q kᵀ / √Dh, masked) v. q [B, H, T, Dh], k / v [B, H, S, Dh], allowed [B, T, S] -> [B, H, T, Dh].

  float32 accumulation in both products (bf16-accumulating dots are the slow path on CPU); the mask is applied where
  the scores are made, so no [B, H, T, S] bias is ever stored. Masked scores get the float32 minimum, as
  transformers does, so a fully padded row stays finite."""
  scores = jnp.einsum("bhtd,bhsd->bhts", q, k, preferred_element_type=jnp.float32) / math.sqrt(q.shape[-1])
  scores = jnp.where(allowed[:, None], scores, jnp.finfo(jnp.float32).min)  # [B, H, T, S]
  probs = jax.nn.softmax(scores, axis=-1).astype(dtype)
  return jnp.einsum("bhts,bhsd->bhtd", probs, v, preferred_element_type=jnp.float32).astype(dtype)


class Linear(nn.Module):
  """y = x W (+ b) (+ scale · dropout(x) A B when adapters for this path are in the `lora` collection)."""

  features: int
  axes: tuple[str, str]
  use_bias: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  lora_scale: float = 1.0
  lora_dropout: float = 0.0

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    kernel = self.param(
        "kernel", nn.with_logical_partitioning(_init, self.axes), (x.shape[-1], self.features), self.param_dtype)
    x = x.astype(self.dtype)
    y = _dot(x, kernel, self.dtype)
    if self.use_bias:
      bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, self.axes[1:]), (self.features,),
                        self.param_dtype)
      y = y + bias.astype(self.dtype)
    if self.has_variable("lora", "a"):
      a = self.get_variable("lora", "a").astype(self.dtype)  # [in, r]
      b = self.get_variable("lora", "b").astype(self.dtype)  # [r, out]
      h = nn.Dropout(rate=self.lora_dropout)(x, deterministic=deterministic or self.lora_dropout == 0.0)
      y = y + self.lora_scale * _dot(_dot(h, a, self.dtype), b, self.dtype)
    return y


class RMSNorm(nn.Module):
  eps: float
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("norm",)), (x.shape[-1],),
                       self.param_dtype)
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.eps)
    return scale.astype(self.dtype) * x32.astype(self.dtype)


class Attention(nn.Module):
  cfg: LlamaConfig
  dtype: Any
  param_dtype: Any
  lora_scale: float
  lora_dropout: float
  attention: str = "einsum"

  @nn.compact
  def __call__(self, x: Array, rope: tuple[Array, Array], allowed: Array, deterministic: bool,
               past: dict[str, Array] | None = None) -> tuple[Array, dict[str, Array]]:
    """(output [B, T, D], this call's rotated keys / values {'k', 'v': [B, T, KV, Dh]}). `past` holds earlier keys /
    values {'k', 'v': [B, S, KV, Dh]} (a shared prompt prefix) that the T new tokens attend to before themselves;
    `allowed` [B, T, S + T] bool says which keys each query sees."""
    cfg = self.cfg
    b, t, _ = x.shape
    kv, g, dh = cfg.num_kv_heads, cfg.num_heads // cfg.num_kv_heads, cfg.head_dim
    lin = dict(dtype=self.dtype, param_dtype=self.param_dtype, lora_scale=self.lora_scale,
               lora_dropout=self.lora_dropout)
    q = Linear(cfg.num_heads * dh, ("embed", "q_heads"), cfg.attention_bias, name="q_proj", **lin)(x, deterministic)
    k = Linear(kv * dh, ("embed", "kv_heads"), cfg.attention_bias, name="k_proj", **lin)(x, deterministic)
    v = Linear(kv * dh, ("embed", "kv_heads"), cfg.attention_bias, name="v_proj", **lin)(x, deterministic)
    q = apply_rope(q.reshape(b, t, cfg.num_heads, dh), *rope)  # [B, T, H, Dh]
    k = apply_rope(k.reshape(b, t, kv, dh), *rope)  # [B, T, KV, Dh]
    v = v.reshape(b, t, kv, dh)  # [B, T, KV, Dh]
    new = {"k": k, "v": v}
    if past is not None:
      k = jnp.concatenate([past["k"].astype(k.dtype), k], axis=1)  # [B, S + T, KV, Dh]
      v = jnp.concatenate([past["v"].astype(v.dtype), v], axis=1)  # [B, S + T, KV, Dh]
    if self.attention == "dpa":
      out = jax.nn.dot_product_attention(q, k, v, mask=allowed[:, None])  # [B, T, H, Dh]
      out = out.reshape(b, t, cfg.num_heads * dh)
    else:
      # Grouped-query attention with the kv heads repeated to all H query heads and heads moved in front: XLA's CPU
      # dot emitter runs [B·H, T, Dh] × [B·H, Dh, S] batched matmuls much faster than the 5-D grouped einsum.
      q = q.transpose(0, 2, 1, 3)  # [B, H, T, Dh]
      k = jnp.repeat(k, g, axis=2).transpose(0, 2, 1, 3)  # [B, H, S, Dh]
      v = jnp.repeat(v, g, axis=2).transpose(0, 2, 1, 3)  # [B, H, S, Dh]
      if self.attention == "causal_blocks" and t > _Q_BLOCK:
        # Causal: queries [lo, hi) see no key after the past plus hi, so each block of queries is scored against
        # that prefix of the keys only. This skips most of the masked upper triangle (work and [B, H, T, S] float32
        # scores alike); the keys skipped are masked anyway, so real rows get the same softmax.
        past_len = k.shape[2] - t
        out = jnp.concatenate([
            _attend(q[:, :, lo:lo + _Q_BLOCK], k[:, :, :past_len + lo + _Q_BLOCK], v[:, :, :past_len + lo + _Q_BLOCK],
                    allowed[:, lo:lo + _Q_BLOCK, :past_len + lo + _Q_BLOCK], self.dtype)
            for lo in range(0, t, _Q_BLOCK)], axis=2)  # [B, H, T, Dh]
      else:
        out = _attend(q, k, v, allowed, self.dtype)  # [B, H, T, Dh]
      out = out.transpose(0, 2, 1, 3).reshape(b, t, cfg.num_heads * dh)  # [B, T, H·Dh]
    out = Linear(cfg.hidden_size, ("q_heads", "embed"), cfg.o_bias, name="o_proj", **lin)(out, deterministic)
    return out, new


class MLP(nn.Module):
  cfg: LlamaConfig
  dtype: Any
  param_dtype: Any
  lora_scale: float
  lora_dropout: float

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    cfg = self.cfg
    lin = dict(use_bias=cfg.mlp_bias, dtype=self.dtype, param_dtype=self.param_dtype, lora_scale=self.lora_scale,
               lora_dropout=self.lora_dropout)
    gate = Linear(cfg.intermediate_size, ("embed", "mlp"), name="gate_proj", **lin)(x, deterministic)
    up = Linear(cfg.intermediate_size, ("embed", "mlp"), name="up_proj", **lin)(x, deterministic)
    return Linear(cfg.hidden_size, ("mlp", "embed"), name="down_proj", **lin)(nn.silu(gate) * up, deterministic)


class Block(nn.Module):
  """One decoder layer. Returns (x, per-layer outputs): {'k', 'v'} when `want_kv`, 'h' (its output) when
  `want_hidden`; the same signature serves the Python loop and `nn.scan` (whose ys stack them over layers)."""

  cfg: LlamaConfig
  dtype: Any
  param_dtype: Any
  lora_scale: float
  lora_dropout: float
  attention: str = "einsum"

  @nn.compact
  def __call__(self, x: Array, rope: tuple[Array, Array], allowed: Array, deterministic: bool,
               past: dict[str, Array] | None = None, want_kv: bool = False,
               want_hidden: bool = False) -> tuple[Array, dict[str, Array]]:
    kw = dict(cfg=self.cfg, dtype=self.dtype, param_dtype=self.param_dtype, lora_scale=self.lora_scale,
              lora_dropout=self.lora_dropout)
    norm = dict(eps=self.cfg.rms_norm_eps, dtype=self.dtype, param_dtype=self.param_dtype)
    h = RMSNorm(name="input_layernorm", **norm)(x)
    a, kv = Attention(name="self_attn", attention=self.attention, **kw)(h, rope, allowed, deterministic, past)
    x = x + a
    h = RMSNorm(name="post_attention_layernorm", **norm)(x)
    x = x + MLP(name="mlp", **kw)(h, deterministic)
    ys = dict(kv) if want_kv else {}
    if want_hidden:
      ys["h"] = x
    return x, ys


class Decoder(nn.Module):
  """The decoder. `dtype` is the compute dtype; `param_dtype` what fresh params are created in (loaders choose their
  own storage dtype, e.g. bf16 frozen weights with f32 compute). `lora_scale` = alpha / r, as PEFT."""

  cfg: LlamaConfig
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  lora_scale: float = 1.0
  lora_dropout: float = 0.0
  remat: bool = False  # recompute each block in the backward pass: less memory, ~30% more compute
  scan_layers: bool = False  # one `nn.scan` over stacked layer params ('layers/...' [L, ...]): compiles once
  # 'einsum' (heads-first batched matmuls), 'causal_blocks' (the same, each block of queries against only the keys
  # it can see) or 'dpa' (jax.nn.dot_product_attention)
  attention: str = "einsum"

  def setup(self):
    cfg = self.cfg
    self.embed_tokens = Embed(cfg.vocab_size, cfg.hidden_size, self.dtype, self.param_dtype)
    # static: deterministic, want_kv, want_hidden (argument indices count `self`)
    block = nn.remat(Block, static_argnums=(4, 6, 7)) if self.remat else Block
    args = (cfg, self.dtype, self.param_dtype, self.lora_scale, self.lora_dropout, self.attention)
    if self.scan_layers:
      scanned = nn.scan(block, variable_axes={"params": 0, "lora": 0}, split_rngs={"params": True, "dropout": True},
                        in_axes=(nn.broadcast, nn.broadcast, nn.broadcast, 0, nn.broadcast, nn.broadcast),
                        length=cfg.num_layers, metadata_params={nn.PARTITION_NAME: "layers"})
      self.layers = scanned(*args)
    else:
      self.layers = [block(*args) for _ in range(cfg.num_layers)]
    self.norm = RMSNorm(cfg.rms_norm_eps, self.dtype, self.param_dtype)
    if not cfg.tie_word_embeddings:
      self.lm_head = self.param("lm_head", nn.with_logical_partitioning(_init, ("embed", "vocab")),
                                (cfg.hidden_size, cfg.vocab_size), self.param_dtype)

  def embed(self, input_ids: Array) -> Array:
    """Token embeddings [B, T, D] in the compute dtype (CoLLM overwrites slot rows of this before `__call__`)."""
    return self.embed_tokens(input_ids)

  def __call__(
      self,
      input_ids: Array | None = None,
      *,
      inputs_embeds: Array | None = None,
      attention_mask: Array | None = None,
      logit_positions: Array | None = None,
      logit_token_ids: Array | None = None,
      output_hidden_states: bool = False,
      compute_logits: bool = True,
      deterministic: bool = True,
      past_kv: dict[str, Array] | None = None,
      past_mask: Array | None = None,
      return_kv: bool = False,
      segment_ids: Array | None = None,
  ) -> dict[str, Any]:
    """Runs the decoder.

    Args:
      input_ids: [B, T] int, or None when `inputs_embeds` [B, T, D] is given.
      attention_mask: [B, T], 1 for real tokens; left padding is expected (positions count real tokens only).
      logit_positions: [B, P] int positions whose logits are wanted (e.g. the last prompt token); None = all.
      logit_token_ids: [V'] int vocabulary subset (e.g. the "Yes"/"No" ids); None = the whole vocabulary.
      output_hidden_states: also return every layer's hidden states: the embeddings, then each block's output, the
        last one after the final norm (transformers' convention, so they compare one to one).
      compute_logits: False skips the head altogether (encoders only need hidden states).
      past_kv: {'k', 'v': [L, B, S, KV, Dh]} keys / values of a prefix that precedes these tokens (from an earlier
        call's `kv`, gathered to this batch's rows); positions continue after its real tokens.
      past_mask: [B, S], 1 for the prefix's real tokens (padding may sit anywhere: it is masked out).
      return_kv: also return this call's keys / values as `kv` {'k', 'v': [L, B, T, KV, Dh]}.
      segment_ids: [B, T] int, packed rows: several sequences per row, each numbered 1, 2, … (0 = padding); a
        token sees the earlier tokens of its own sequence (and the prefix), and positions restart with each.

    Returns:
      dict with `logits` [B, P or T, V' or V] float32, `last_hidden_state` [B, T, D] (after the final norm) and,
      on request, `hidden_states`: a tuple of L + 1 arrays [B, T, D], and `kv`.
    """
    x = self.embed(input_ids) if inputs_embeds is None else inputs_embeds.astype(self.dtype)  # [B, T, D]
    x0, (b, t) = x, x.shape[:2]
    mask = jnp.ones((b, t), jnp.int32) if attention_mask is None else attention_mask.astype(jnp.int32)
    allowed = jnp.tril(jnp.ones((t, t), bool))[None] & (mask[:, None, :] > 0)  # [B, T, T]
    within = jnp.cumsum(mask, axis=-1) - 1  # [B, T] position of each real token among the row's
    if segment_ids is not None:
      seg = segment_ids.astype(jnp.int32)
      allowed &= seg[:, :, None] == seg[:, None, :]
      # position within its own sequence: index minus the index of the sequence's first token
      idx = jnp.broadcast_to(jnp.arange(t), (b, t))
      first = jnp.concatenate([jnp.ones((b, 1), bool), seg[:, 1:] != seg[:, :-1]], axis=1)  # [B, T] starts
      start = jax.lax.cummax(jnp.where(first, idx, 0), axis=1)  # [B, T]
      within = idx - start
    offset = 0
    if past_kv is not None:
      pm = past_mask.astype(jnp.int32)  # [B, S]
      offset = jnp.sum(pm, axis=-1, keepdims=True)  # [B, 1] real prefix tokens
      allowed = jnp.concatenate([jnp.broadcast_to(pm[:, None, :] > 0, (b, t, pm.shape[1])), allowed], -1)
    positions = jnp.maximum(offset + within, 0)  # [B, T]
    rope = rope_tables(positions, rope_inv_freq(self.cfg), self.dtype)

    if self.scan_layers:
      x, ys = self.layers(x, rope, allowed, deterministic, past_kv, return_kv, output_hidden_states)  # ys [L, ...]
      layer_out = [ys["h"][i] for i in range(self.cfg.num_layers)] if output_hidden_states else []
      kv = {"k": ys["k"], "v": ys["v"]} if return_kv else None
    else:
      collected = []
      for i, layer in enumerate(self.layers):
        past = None if past_kv is None else {"k": past_kv["k"][i], "v": past_kv["v"][i]}
        x, ys = layer(x, rope, allowed, deterministic, past, return_kv, output_hidden_states)
        collected.append(ys)
      layer_out = [ys["h"] for ys in collected] if output_hidden_states else []
      kv = ({n: jnp.stack([ys[n] for ys in collected]) for n in ("k", "v")} if return_kv else None)
    hidden = [x0] + layer_out
    final = self.norm(x)  # [B, T, D]
    out = {"last_hidden_state": final}
    if output_hidden_states:
      out["hidden_states"] = tuple(hidden[:-1]) + (final,)  # transformers' convention: the last one is normed
    if return_kv:
      out["kv"] = kv
    if compute_logits:
      out["logits"] = self.logits(final, logit_positions, logit_token_ids)
    return out

  def logits(self, final: Array, positions: Array | None = None, token_ids: Array | None = None) -> Array:
    """Head projection of normed hidden states, only at `positions` [B, P] and for `token_ids` [V'] if given.

    A token subset is projected in float32 whatever the compute dtype: it is cheap, and bf16 logits of a few
    answer tokens round so coarsely that different prompts tie (which AUC then counts as half-correct).
    """
    if positions is not None:
      final = jnp.take_along_axis(final, positions[..., None].astype(jnp.int32), axis=1)  # [B, P, D]
    dtype = self.dtype if token_ids is None else jnp.float32
    final = final.astype(dtype)
    if self.cfg.tie_word_embeddings:
      table = self.embed_tokens.embedding  # [V, D]
      table = table if token_ids is None else jnp.take(table, token_ids, axis=0)  # [V', D]
      logits = jnp.einsum("bpd,vd->bpv", final, table.astype(dtype))
    else:
      head = self.lm_head if token_ids is None else jnp.take(self.lm_head, token_ids, axis=1)  # [D, V']
      logits = jnp.einsum("bpd,dv->bpv", final, head.astype(dtype))
    return logits.astype(jnp.float32)


class Embed(nn.Module):
  num_embeddings: int
  features: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  def setup(self):
    self.embedding = self.param("embedding", nn.with_logical_partitioning(_init, ("vocab", "embed")),
                                (self.num_embeddings, self.features), self.param_dtype)

  def __call__(self, ids: Array) -> Array:
    return jnp.take(self.embedding, ids, axis=0).astype(self.dtype)  # [B, T, D]


def param_axes(cfg: LlamaConfig):
  """Logical axis names of every parameter (a tree of PartitionSpecs), read off the module definitions."""
  boxed = jax.eval_shape(lambda: Decoder(cfg).init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32)))
  return nn.get_partition_spec(boxed["params"])


def make_decoder(cfg: LlamaConfig, dtype=jnp.float32, lora_cfg: lora.LoraConfig | None = None,
                 remat: bool = False, scan_layers: bool = False, attention: str = "einsum") -> Decoder:
  """A Decoder with `lora_cfg`'s scale α / r (PEFT's convention) and dropout; without adapters both are unused."""
  kw = dict(dtype=dtype, remat=remat, scan_layers=scan_layers, attention=attention)
  if lora_cfg is None:
    return Decoder(cfg, **kw)
  return Decoder(cfg, lora_scale=lora_cfg.scale, lora_dropout=lora_cfg.dropout, **kw)
