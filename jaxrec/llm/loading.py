"""Loading pretrained weights: a declarative key table plus named transforms, checked strictly.

Each table row is `(source-key regex, target-path template, transform)`. Every source tensor must match a row,
every parameter the model expects must be produced, and every shape must agree; otherwise loading fails with one
message that lists all unmapped, missing and mis-shaped keys at once.

Sources: a Hugging Face checkpoint directory (`config.json` + `model.safetensors`, or shards listed in
`model.safetensors.index.json`; f32/bf16/f16), a hub id (resolved through huggingface_hub when there is a network),
or a GGUF file (dequantized by the `gguf` package; llama.cpp's q/k row permutation undone).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.errors import JaxrecError
from jaxrec.llm import config as config_lib
from jaxrec.llm.config import LlamaConfig
from jaxrec.tree import unflatten

# --- key tables ---------------------------------------------------------------------------------------------------

HF_TABLE = (
    (r"model\.embed_tokens\.weight", r"embed_tokens/embedding", "identity"),
    (r"model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.weight", r"layers_\1/self_attn/\2_proj/kernel", "transpose"),
    (r"model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.bias", r"layers_\1/self_attn/\2_proj/bias", "identity"),
    (r"model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight", r"layers_\1/mlp/\2_proj/kernel", "transpose"),
    (r"model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.bias", r"layers_\1/mlp/\2_proj/bias", "identity"),
    (r"model\.layers\.(\d+)\.(input_layernorm|post_attention_layernorm)\.weight", r"layers_\1/\2/scale", "identity"),
    (r"model\.norm\.weight", r"norm/scale", "identity"),
    (r"lm_head\.weight", r"lm_head", "transpose"),
)

# llama.cpp's converter permutes q/k rows for Llama (interleaved rotary) but not for Qwen2 (NeoX rotary).
_GGUF_QK = {"llama": ("unpermute_q", "unpermute_k"), "qwen2": ("transpose", "transpose")}


def gguf_table(arch: str) -> tuple[tuple[str, str, str], ...]:
  q, k = _GGUF_QK[arch]
  bias_q, bias_k = ("unpermute_q_bias", "unpermute_k_bias") if arch == "llama" else ("identity", "identity")
  return (
      (r"token_embd\.weight", r"embed_tokens/embedding", "identity"),
      (r"blk\.(\d+)\.attn_q\.weight", r"layers_\1/self_attn/q_proj/kernel", q),
      (r"blk\.(\d+)\.attn_k\.weight", r"layers_\1/self_attn/k_proj/kernel", k),
      (r"blk\.(\d+)\.attn_v\.weight", r"layers_\1/self_attn/v_proj/kernel", "transpose"),
      (r"blk\.(\d+)\.attn_output\.weight", r"layers_\1/self_attn/o_proj/kernel", "transpose"),
      (r"blk\.(\d+)\.attn_q\.bias", r"layers_\1/self_attn/q_proj/bias", bias_q),
      (r"blk\.(\d+)\.attn_k\.bias", r"layers_\1/self_attn/k_proj/bias", bias_k),
      (r"blk\.(\d+)\.attn_v\.bias", r"layers_\1/self_attn/v_proj/bias", "identity"),
      (r"blk\.(\d+)\.ffn_gate\.weight", r"layers_\1/mlp/gate_proj/kernel", "transpose"),
      (r"blk\.(\d+)\.ffn_up\.weight", r"layers_\1/mlp/up_proj/kernel", "transpose"),
      (r"blk\.(\d+)\.ffn_down\.weight", r"layers_\1/mlp/down_proj/kernel", "transpose"),
      (r"blk\.(\d+)\.attn_norm\.weight", r"layers_\1/input_layernorm/scale", "identity"),
      (r"blk\.(\d+)\.ffn_norm\.weight", r"layers_\1/post_attention_layernorm/scale", "identity"),
      (r"output_norm\.weight", r"norm/scale", "identity"),
      (r"output\.weight", r"lm_head", "transpose"),
      (r"rope_freqs\.weight", None, "drop"),  # llama.cpp's precomputed llama-3 factors; we derive them from config
  )


# --- named transforms ---------------------------------------------------------------------------------------------


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
  """Inverts llama.cpp's `permute`: rows [H, Dh/2, 2] (interleaved pairs) back to [H, 2, Dh/2] (half split)."""
  shape = w.shape
  return w.reshape(n_head, shape[0] // n_head // 2, 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def transforms(cfg: LlamaConfig) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
  return {
      "identity": lambda w: w,
      "transpose": lambda w: w.T,  # torch Linear stores (out, in); our kernels are (in, out)
      "unpermute_q": lambda w: _unpermute(w, cfg.num_heads).T,
      "unpermute_k": lambda w: _unpermute(w, cfg.num_kv_heads).T,
      "unpermute_q_bias": lambda w: _unpermute(w, cfg.num_heads),
      "unpermute_k_bias": lambda w: _unpermute(w, cfg.num_kv_heads),
  }


# --- the strict mapper --------------------------------------------------------------------------------------------


def expected_shapes(cfg: LlamaConfig) -> dict[str, tuple[int, ...]]:
  """'/'-joined parameter path → shape, taken from the model definition itself (no weights are made)."""
  from jaxrec.llm.model import Decoder  # local: keeps this module importable without building a model

  shapes = jax.eval_shape(lambda: Decoder(cfg).init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32)))
  flat = jax.tree_util.tree_flatten_with_path(shapes["params"], is_leaf=lambda x: hasattr(x, "unbox"))[0]
  out = {}
  for path, leaf in flat:
    leaf = leaf.unbox() if hasattr(leaf, "unbox") else leaf
    out["/".join(k.key for k in path)] = tuple(leaf.shape)
  return out


def map_tensors(
    names: Iterable[str],
    read: Callable[[str], np.ndarray],
    table,
    cfg: LlamaConfig,
    source: str,
    dtype=jnp.float32,
) -> dict[str, Any]:
  """Applies `table` to the tensors `names` (read lazily with `read`) and returns the nested params dict."""
  want = expected_shapes(cfg)
  fns = transforms(cfg)
  compiled = [(re.compile(src + r"\Z"), dst, fn) for src, dst, fn in table]
  flat, unmapped, misshaped = {}, [], []
  for name in names:
    for pat, dst, fn in compiled:
      m = pat.match(name)
      if m:
        break
    else:
      unmapped.append(name)
      continue
    if fn == "drop" or (dst == "lm_head" and cfg.tie_word_embeddings):
      continue  # tied checkpoints may still carry a copy of the head; the embedding is the truth
    target = m.expand(dst)
    if target not in want:
      unmapped.append(f"{name} (→ {target}, which the model does not have)")
      continue
    value = np.asarray(fns[fn](read(name)))
    if tuple(value.shape) != want[target]:
      misshaped.append(f"{name} → {target}: {tuple(value.shape)}, expected {want[target]}")
      continue
    flat[target] = jnp.asarray(value, dtype=dtype)
  missing = sorted(set(want) - set(flat))
  problems = []
  if unmapped:
    problems.append(f"unmapped: {', '.join(sorted(unmapped))}")
  if missing:
    problems.append(f"missing: {', '.join(missing)}")
  if misshaped:
    problems.append(f"mis-shaped: {', '.join(misshaped)}")
  if problems:
    raise JaxrecError(f"{source}: checkpoint does not match the model; " + "; ".join(problems))
  return unflatten(flat)


# --- Hugging Face checkpoints -------------------------------------------------------------------------------------


def _safetensors_files(d: pathlib.Path) -> list[pathlib.Path]:
  index = d / "model.safetensors.index.json"
  if index.is_file():
    try:
      weight_map = json.loads(index.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as e:
      raise JaxrecError(f"{index}: not a valid safetensors index (expected JSON with a weight_map; {e})") from None
    files = sorted({d / f for f in weight_map.values()})
    absent = [str(f) for f in files if not f.is_file()]
    if absent:
      raise JaxrecError(f"{index}: shard files listed but absent: {', '.join(absent)}")
    return files
  single = d / "model.safetensors"
  if single.is_file():
    return [single]
  raise JaxrecError(f"{d}: no model.safetensors or model.safetensors.index.json (expected a HF checkpoint directory)")


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
  if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
    return False
  try:
    socket.create_connection((host, 443), timeout=timeout).close()
    return True
  except OSError:
    return False


def resolve_checkpoint(path_or_id: str) -> pathlib.Path:
  """A local directory as is; a hub id (`org/name`) through huggingface_hub, or one line saying what to download."""
  p = pathlib.Path(path_or_id).expanduser()
  if p.exists():
    return p
  if re.fullmatch(r"[\w.-]+/[\w.-]+", path_or_id) and _hub_reachable():
    from huggingface_hub import snapshot_download

    return pathlib.Path(snapshot_download(path_or_id, allow_patterns=["*.json", "*.safetensors", "tokenizer*"]))
  raise JaxrecError(
      f"{path_or_id}: not a local checkpoint directory and the Hugging Face hub is unreachable; on a machine with "
      f"network run `hf download {path_or_id} --local-dir DIR`, copy DIR here and pass its path")


def load_hf(path_or_id: str, dtype=jnp.float32) -> tuple[LlamaConfig, dict[str, Any]]:
  """Loads (config, params) from a Hugging Face checkpoint directory or hub id."""
  from safetensors import SafetensorError, safe_open

  d = resolve_checkpoint(path_or_id)
  cfg = config_lib.from_hf_dir(d)
  handles = {}
  try:
    for f in _safetensors_files(d):
      # framework="flax" reads bf16 too (numpy has no bfloat16); values are cast to `dtype` afterwards.
      h = safe_open(str(f), framework="flax")
      for k in h.keys():
        handles[k] = (f, h)
    read = lambda name: np.asarray(handles[name][1].get_tensor(name).astype(jnp.float32))
    params = map_tensors(handles.keys(), read, HF_TABLE, cfg, str(d), dtype)
  except SafetensorError as e:
    bad = next((str(f) for f in _safetensors_files(d) if not _readable(f)), str(d))
    raise JaxrecError(f"{bad}: corrupt or truncated safetensors file ({e})") from None
  return cfg, params


def _readable(f: pathlib.Path) -> bool:
  from safetensors import SafetensorError, safe_open

  try:
    with safe_open(str(f), framework="flax") as h:
      for k in h.keys():
        h.get_tensor(k)
    return True
  except (SafetensorError, OSError):
    return False


# --- GGUF ---------------------------------------------------------------------------------------------------------


def read_gguf(path: str | pathlib.Path):
  """Opens a GGUF file with the `gguf` package; a corrupt or truncated file fails in one line naming it."""
  import gguf

  path = pathlib.Path(path)
  if not path.is_file():
    raise JaxrecError(f"{path}: GGUF file not found")
  try:
    return gguf.GGUFReader(str(path))
  except Exception as e:  # the reader raises ValueError, struct errors or IndexError on damaged files
    raise JaxrecError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e})") from None


def gguf_metadata(reader) -> dict[str, Any]:
  meta = {}
  for key, field in reader.fields.items():
    if key.startswith("GGUF."):
      continue
    meta[key] = field.contents()
  return meta


def load_gguf(path: str | pathlib.Path, dtype=jnp.float32) -> tuple[LlamaConfig, dict[str, Any]]:
  """Loads (config, params) from a GGUF file, dequantizing every tensor to float32 first."""
  import gguf

  reader = read_gguf(path)
  meta = gguf_metadata(reader)
  cfg = config_lib.from_gguf_metadata(meta, str(path))
  tensors = {t.name: t for t in reader.tensors}
  cfg = cfg.replace(tie_word_embeddings="output.weight" not in tensors)

  def read(name):
    t = tensors[name]
    return np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)  # (out, in)

  return cfg, map_tensors(tensors.keys(), read, gguf_table(cfg.model_type), cfg, str(path), dtype)


def check_pretrained(spec: str | None) -> None:
  """What `load_pretrained(spec)` would refuse, found without loading a weight: the embedded model's checksum, a
  GGUF's header and tensor table (a truncated file fails here), a HF directory's config and safetensors headers."""
  from safetensors import SafetensorError, safe_open

  if not spec:
    from jaxrec.llm import assets

    assets.default_gguf()
    return
  if str(spec).endswith(".gguf"):
    read_gguf(spec)
    return
  d = resolve_checkpoint(spec)
  config_lib.from_hf_dir(d)
  for f in _safetensors_files(d):
    try:
      with safe_open(str(f), framework="flax") as h:
        h.keys()
    except (SafetensorError, OSError) as e:
      raise JaxrecError(f"{f}: corrupt or truncated safetensors file ({e})") from None


def load_pretrained(spec: str | None, dtype=jnp.float32) -> tuple[LlamaConfig, dict[str, Any]]:
  """One entry point: None → the embedded SmolLM2; a `.gguf` path → GGUF; otherwise a HF directory or hub id."""
  if not spec:
    from jaxrec.llm import assets

    spec = str(assets.default_gguf())
  if str(spec).endswith(".gguf"):
    return load_gguf(spec, dtype)
  return load_hf(spec, dtype)
