"""Decoder hyper-parameters for the Llama family (Llama 2/3, Vicuna, SmolLM2, Qwen2).

One frozen dataclass, built from a Hugging Face `config.json` (either the transformers-5 `rope_parameters` layout or
the older `rope_theta` + `rope_scaling` one) or from GGUF metadata. It is hashable, so it can be a static field of a
Flax module and of jitted functions.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

from jaxrec.errors import JaxrecError

# model_type values we know how to run; all share one decoder, differing only in the fields below.
SUPPORTED_MODEL_TYPES = ("llama", "qwen2", "mistral")


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  rms_norm_eps: float = 1e-5
  rope_theta: float = 10000.0
  # Rope scaling as a sorted tuple of (key, value) pairs so the dataclass stays hashable; () means none.
  rope_scaling: tuple = ()
  tie_word_embeddings: bool = False
  attention_bias: bool = False  # q/k/v biases (Qwen2 always has them; Llama when `attention_bias` is set)
  o_bias: bool = False
  mlp_bias: bool = False
  max_position_embeddings: int = 2048
  model_type: str = "llama"
  bos_token_id: int | None = None
  eos_token_id: int | None = None
  pad_token_id: int | None = None

  @property
  def rope_scaling_dict(self) -> dict[str, Any]:
    return dict(self.rope_scaling)

  def replace(self, **kw) -> "LlamaConfig":
    return dataclasses.replace(self, **kw)


def _first_id(value):
  if isinstance(value, (list, tuple)):
    return int(value[0]) if value else None
  return None if value is None else int(value)


def from_hf_dict(d: dict[str, Any], source: str = "config.json") -> LlamaConfig:
  """Builds a LlamaConfig from the dict of a Hugging Face `config.json`."""
  model_type = d.get("model_type", "llama")
  if model_type not in SUPPORTED_MODEL_TYPES:
    raise JaxrecError(f"{source}: model_type {model_type!r} is not supported (expected one of {SUPPORTED_MODEL_TYPES})")
  try:
    hidden = int(d["hidden_size"])
    heads = int(d["num_attention_heads"])
    rope = dict(d.get("rope_parameters") or {})
    theta = float(rope.pop("rope_theta", d.get("rope_theta", 10000.0)))
    scaling = dict(d.get("rope_scaling") or rope)
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type in (None, "default"):
      scaling = {}
    elif rope_type not in ("llama3", "linear"):
      raise JaxrecError(f"{source}: rope type {rope_type!r} is not supported (expected default, linear or llama3)")
    else:
      scaling = {k: v for k, v in scaling.items() if k != "type"} | {"rope_type": rope_type}
    is_qwen = model_type == "qwen2"
    return LlamaConfig(
        vocab_size=int(d["vocab_size"]),
        hidden_size=hidden,
        intermediate_size=int(d["intermediate_size"]),
        num_layers=int(d["num_hidden_layers"]),
        num_heads=heads,
        num_kv_heads=int(d.get("num_key_value_heads") or heads),
        head_dim=int(d.get("head_dim") or hidden // heads),
        rms_norm_eps=float(d.get("rms_norm_eps", 1e-6)),
        rope_theta=theta,
        rope_scaling=tuple(sorted(scaling.items())),
        tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
        attention_bias=True if is_qwen else bool(d.get("attention_bias", False)),
        o_bias=False if is_qwen else bool(d.get("attention_bias", False)),
        mlp_bias=bool(d.get("mlp_bias", False)),
        max_position_embeddings=int(d.get("max_position_embeddings", 2048)),
        model_type=model_type,
        bos_token_id=_first_id(d.get("bos_token_id")),
        eos_token_id=_first_id(d.get("eos_token_id")),
        pad_token_id=_first_id(d.get("pad_token_id")),
    )
  except KeyError as e:
    raise JaxrecError(f"{source}: missing field {e.args[0]!r} (expected a Llama/Qwen2 config.json)") from None


def from_hf_dir(path: str | pathlib.Path) -> LlamaConfig:
  path = pathlib.Path(path) / "config.json"
  if not path.is_file():
    raise JaxrecError(f"{path}: not found (expected a Hugging Face checkpoint directory with config.json)")
  try:
    d = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise JaxrecError(f"{path}: not valid JSON ({e})") from None
  return from_hf_dict(d, source=str(path))


def from_gguf_metadata(meta: dict[str, Any], source: str) -> LlamaConfig:
  """Builds a LlamaConfig from GGUF key/value metadata (`llama.*` keys, as llama.cpp writes them)."""
  arch = meta.get("general.architecture", "llama")
  if arch not in ("llama", "qwen2"):
    raise JaxrecError(f"{source}: GGUF architecture {arch!r} is not supported (expected llama or qwen2)")

  def get(key, default=None):
    v = meta.get(f"{arch}.{key}", default)
    if v is None:
      raise JaxrecError(f"{source}: GGUF metadata lacks {arch}.{key}")
    return v

  hidden = int(get("embedding_length"))
  heads = int(get("attention.head_count"))
  n_vocab = len(meta["tokenizer.ggml.tokens"]) if "tokenizer.ggml.tokens" in meta else int(get("vocab_size"))
  return LlamaConfig(
      vocab_size=n_vocab,
      hidden_size=hidden,
      intermediate_size=int(get("feed_forward_length")),
      num_layers=int(get("block_count")),
      num_heads=heads,
      num_kv_heads=int(get("attention.head_count_kv", heads)),
      head_dim=hidden // heads,
      rms_norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-5)),
      rope_theta=float(get("rope.freq_base", 10000.0)),
      tie_word_embeddings=True,  # set to False by the loader when the file has an output.weight tensor
      attention_bias=arch == "qwen2",
      max_position_embeddings=int(get("context_length", 2048)),
      model_type=arch,
      bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
      eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
      pad_token_id=meta.get("tokenizer.ggml.padding_token_id"),
  )
