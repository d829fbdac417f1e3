"""The backbone fields of `config.model`, one definition for both LLM families (TALLRec / CoLLM-FaissRet and the
multi-scale recommender), and what they build: tokenizer, decoder config + params, LoRA settings, the Decoder.

  llm: str | None               None = the embedded SmolLM2-135M (GGUF); a `.gguf` path; a HF directory or hub id;
                                'random' = a random decoder shaped by `random_llm` (tests and `:tiny` configs)
  tokenizer: str | None         None = the llm's own (the embedded SmolLM2's for None and 'random')
  random_llm: hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads  (llm='random' only; the
                                vocabulary size is the tokenizer's)
  dtype: 'float32' | 'bfloat16' storage and compute dtype of the backbone (adapters and heads stay float32)
  keep_layers: int              budget knob: keep only the first N decoder layers (<= 0: all)
  remat: bool                   recompute each block in the backward pass (less memory, ~30% more compute)
  scan_layers: bool             one `nn.scan` over the layers, params stacked [L, ...] under 'layers' (compiles one
                                layer program, not L: deep models and `launch/plan.py`); LoRA alike on every layer
  attention: 'causal_blocks' | 'einsum' | 'dpa'   heads-first batched matmuls, each block of 64 queries against
                                only the keys it can see (default: skips most of the masked half), or all queries
                                against all keys, or `jax.nn.dot_product_attention` (cuDNN's fused kernel on GPU).
                                All compute the same function, so a run may resume with another; measured on CPU:
                                benchmarks/results/throughput.md
  lora: rank (0 = no adapters), alpha, dropout, targets (regexes over the backbone's parameter paths); scale α / r
"""

from __future__ import annotations

import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.config_util import checker
from jaxrec.errors import JaxrecError
from jaxrec.llm import lora
from jaxrec.llm.config import LlamaConfig
from jaxrec.llm.loading import load_pretrained
from jaxrec.llm.model import Decoder, make_decoder
from jaxrec.llm.tokenizer import load_tokenizer as _load_tokenizer

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# The `llm='random'` decoder of tests and `:tiny` configs (a family's tiny overlay may deepen it).
RANDOM_LLM = dict(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, num_kv_heads=2)
_LAYER = re.compile(r"layers_(\d+)")


def fields() -> dict[str, Any]:
  """The backbone fields with their defaults (CoLLM's LoRA: r=8, α=16, dropout 0.05 on q/v), to put in a
  family's `config.model` schema."""
  from ml_collections.config_dict import placeholder

  return {
      "llm": placeholder(str),
      "tokenizer": placeholder(str),
      "random_llm": dict(RANDOM_LLM),
      "dtype": "float32",
      "keep_layers": -1,
      "remat": False,
      "scan_layers": False,
      "attention": "causal_blocks",
      "lora": {"rank": 8, "alpha": 16.0, "dropout": 0.05, "targets": list(lora.DEFAULT_TARGETS)},
  }


_check = checker("config.model")


def is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def validate(cfg, min_rank: int = 0) -> None:
  """One-line JaxrecError naming the first impossible backbone value of `config.model` (rank >= `min_rank`)."""
  _check(cfg.dtype in DTYPES, "dtype", f"one of {tuple(DTYPES)}", cfg.dtype)
  _check(is_int(cfg.keep_layers), "keep_layers", "an integer (<= 0 keeps all layers)", cfg.keep_layers)
  _check(isinstance(cfg.remat, bool), "remat", "True or False", cfg.remat)
  _check(isinstance(cfg.scan_layers, bool), "scan_layers", "True or False", cfg.scan_layers)
  _check(cfg.attention in ("einsum", "causal_blocks", "dpa"), "attention", "'einsum', 'causal_blocks' or 'dpa'",
         cfg.attention)
  for key in cfg.random_llm.keys():
    _check(key in RANDOM_LLM, f"random_llm.{key}", f"one of {sorted(RANDOM_LLM)}", key)
  if cfg.llm == "random":
    for key, value in cfg.random_llm.items():
      _check(is_int(value) and value >= 1, f"random_llm.{key}", "an integer >= 1", value)
    r = cfg.random_llm
    _check(r.num_heads % r.num_kv_heads == 0 and r.hidden_size % r.num_heads == 0, "random_llm",
           "num_kv_heads dividing num_heads dividing hidden_size", r.to_dict())
  lo = cfg.lora
  for key in lo.keys():
    _check(key in ("rank", "alpha", "dropout", "targets"), f"lora.{key}", "one of alpha, dropout, rank, targets", key)
  _check(is_int(lo.rank) and lo.rank >= min_rank, "lora.rank",
         f"an integer >= {min_rank}" + (" (0 = no adapters)" if min_rank == 0 else " (the model is LoRA-tuned)"),
         lo.rank)
  _check(isinstance(lo.alpha, (int, float)) and lo.alpha > 0, "lora.alpha", "a value > 0", lo.alpha)
  _check(0 <= lo.dropout < 1, "lora.dropout", "a value in [0, 1)", lo.dropout)
  _check(lo.rank == 0 or len(lo.targets) > 0, "lora.targets", "at least one regex", list(lo.targets))


def lora_config(cfg) -> lora.LoraConfig | None:
  """The LoRA settings of `config.model` (None when rank is 0)."""
  lo = cfg.lora
  if lo.rank == 0:
    return None
  return lora.LoraConfig(rank=int(lo.rank), alpha=float(lo.alpha), dropout=float(lo.dropout),
                         targets=tuple(lo.targets))


def load_tokenizer(cfg):
  """The tokenizer of `config.model` (its own `tokenizer`, else the llm's; the embedded SmolLM2's by default)."""
  spec = cfg.tokenizer or (None if cfg.llm in (None, "random") else cfg.llm)
  return _load_tokenizer(spec)


def truncate_layers(llm_cfg: LlamaConfig, params: dict[str, Any], keep: int) -> tuple[LlamaConfig, dict[str, Any]]:
  """Only the first `keep` decoder blocks (final norm and head kept): a budget knob. keep <= 0 keeps all."""
  if keep <= 0 or keep >= llm_cfg.num_layers:
    return llm_cfg, params
  kept = {k: v for k, v in params.items() if not (_LAYER.fullmatch(k) and int(_LAYER.fullmatch(k)[1]) >= keep)}
  return llm_cfg.replace(num_layers=keep), kept


def random_llm(shape, tok, dtype=jnp.float32, seed: int = 0) -> tuple[LlamaConfig, dict[str, Any]]:
  """A random tied-embedding decoder shaped by `config.model.random_llm`, over the tokenizer's vocabulary."""
  llm_cfg = LlamaConfig(
      vocab_size=len(tok), hidden_size=int(shape.hidden_size), intermediate_size=int(shape.intermediate_size),
      num_layers=int(shape.num_layers), num_heads=int(shape.num_heads), num_kv_heads=int(shape.num_kv_heads),
      head_dim=int(shape.hidden_size) // int(shape.num_heads), tie_word_embeddings=True,
      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
  # Shapes by tracing only; values drawn with numpy as the decoder's own initialisers would (N(0, 0.02) weights,
  # unit norm scales, zero biases): compiling flax's init costs seconds, this costs milliseconds.
  shapes = jax.eval_shape(Decoder(llm_cfg, dtype=dtype, param_dtype=dtype).init, jax.random.PRNGKey(0),
                          jnp.zeros((1, 1), jnp.int32))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = path[-1].key
    if name == "scale":
      value = np.ones(leaf.shape, np.float32)
    elif name == "bias":
      value = np.zeros(leaf.shape, np.float32)
    else:
      value = rng.normal(0.0, 0.02, leaf.shape).astype(np.float32)
    return jnp.asarray(value, dtype)

  return llm_cfg, jax.tree_util.tree_map_with_path(draw, nn.meta.unbox(shapes["params"]))


def load_llm(cfg, tok=None, seed: int = 0) -> tuple[LlamaConfig, dict[str, Any]]:
  """(LlamaConfig, backbone params) with `keep_layers` applied; 'random' needs the tokenizer for its vocabulary."""
  dtype = DTYPES[cfg.dtype]
  if cfg.llm == "random":
    if tok is None:
      raise JaxrecError("config.model.llm='random' needs the tokenizer (its vocabulary size)")
    llm_cfg, params = random_llm(cfg.random_llm, tok, dtype, seed)
  else:
    llm_cfg, params = load_pretrained(cfg.llm, dtype)
  return truncate_layers(llm_cfg, params, int(cfg.keep_layers))


def decoder(cfg, llm_cfg: LlamaConfig) -> Decoder:
  """The Decoder module of `config.model` over `llm_cfg` (layers already truncated): its dtype, LoRA and remat."""
  return make_decoder(llm_cfg, DTYPES[cfg.dtype], lora_config(cfg), remat=bool(cfg.remat), attention=cfg.attention,
                      scan_layers=bool(cfg.scan_layers))
