"""Functional LoRA over the decoder's parameter pytree (PEFT-compatible).

Adapters are their own pytree, mirroring the module paths of the kernels they adapt:
`{'layers_0': {'self_attn': {'q_proj': {'a': [in, r], 'b': [r, out]}}}}`. The decoder reads them from the variable
collection `lora` (`model.apply({'params': base, 'lora': adapters}, …)`) and adds `(alpha / r) · dropout(x) A B`,
PEFT's forward. A is Kaiming-uniform like PEFT (bound 1/sqrt(in)); B starts at zero, so a fresh adapter leaves the
model unchanged. Everything here is a pure function: init, merge, unmerge, PEFT save/load.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec import paths
from jaxrec.errors import JaxrecError
from jaxrec.tree import flatten, unflatten

DEFAULT_TARGETS = (r"layers_\d+/self_attn/(q|v)_proj/kernel",)


@dataclasses.dataclass(frozen=True)
class LoraConfig:
  rank: int = 8
  alpha: float = 16.0
  dropout: float = 0.05
  targets: tuple[str, ...] = DEFAULT_TARGETS  # regexes, full-matched against '/'-joined parameter paths

  @property
  def scale(self) -> float:
    return self.alpha / self.rank


def target_paths(params, targets) -> list[str]:
  """Module paths (kernel path minus '/kernel') of all 2-D kernels matched by any regex in `targets`."""
  pats = [re.compile(t) for t in targets]
  found = [p[: -len("/kernel")] for p, v in flatten(params).items()
           if p.endswith("/kernel") and np.ndim(v) == 2 and any(pat.fullmatch(p) for pat in pats)]
  if not found:
    raise JaxrecError(f"lora.targets {list(targets)} match no 2-D kernel of the model")
  return sorted(found)


def init(params, cfg: LoraConfig, rng: jax.Array, dtype=jnp.float32) -> dict[str, Any]:
  """Fresh adapters for every targeted kernel: A ~ U(±1/sqrt(in)) [in, r], B = 0 [r, out]."""
  flat_params = flatten(params)
  flat = {}
  for i, path in enumerate(target_paths(params, cfg.targets)):
    d_in, d_out = flat_params[path + "/kernel"].shape
    bound = 1.0 / math.sqrt(d_in)
    flat[path + "/a"] = jax.random.uniform(jax.random.fold_in(rng, i), (d_in, cfg.rank), dtype, -bound, bound)
    flat[path + "/b"] = jnp.zeros((cfg.rank, d_out), dtype)
  return unflatten(flat)


def axes(adapters, params_axes) -> dict[str, Any]:
  """Logical axes of the adapters from those of their kernels: A (in, lora_rank), B (lora_rank, out)."""
  flat_axes = flatten(params_axes)
  out = {}
  for path in flatten(adapters):
    module, which = path.rsplit("/", 1)
    *lead, k_in, k_out = tuple(flat_axes[module + "/kernel"])  # lead: ('layers',) when stacked for scan
    out[path] = (*lead, k_in, "lora_rank") if which == "a" else (*lead, "lora_rank", k_out)
  return unflatten(out)


def _apply_delta(params, adapters, sign: float, scale: float):
  flat = flatten(params)
  for path, ab in flatten_modules(adapters).items():
    k = flat[path + "/kernel"]
    flat[path + "/kernel"] = (k.astype(jnp.float32) + sign * scale * (ab["a"] @ ab["b"])).astype(k.dtype)
  return unflatten(flat)


def merge(params, adapters, scale: float):
  """W ← W + scale · A B for every adapted kernel (pure: returns a new tree)."""
  return _apply_delta(params, adapters, +1.0, scale)


def unmerge(params, adapters, scale: float):
  """W ← W − scale · A B: the inverse of `merge` (exact up to float rounding)."""
  return _apply_delta(params, adapters, -1.0, scale)


def flatten_modules(adapters) -> dict[str, dict[str, Any]]:
  """{'layers_0/self_attn/q_proj': {'a': …, 'b': …}, …}"""
  flat = flatten(adapters)
  mods: dict[str, dict[str, Any]] = {}
  for path, v in flat.items():
    module, which = path.rsplit("/", 1)
    mods.setdefault(module, {})[which] = v
  return mods


# --- PEFT format --------------------------------------------------------------------------------------------------

_OURS = re.compile(r"layers_(\d+)/(self_attn|mlp)/(\w+)")
_THEIRS = re.compile(r"base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])\.weight")


def _hf_module(path: str) -> str:
  m = _OURS.fullmatch(path)
  if not m:
    raise JaxrecError(f"adapter at {path} has no PEFT equivalent (only decoder-layer projections do)")
  return f"model.layers.{m[1]}.{m[2]}.{m[3]}"


def save_peft(directory, adapters, cfg: LoraConfig, num_layers: int, base_model: str = "") -> None:
  """Writes `adapter_config.json` + `adapter_model.safetensors` as PEFT does (atomically, as one directory)."""
  from safetensors.numpy import save_file

  from jaxrec.llm.stacking import unstack_layers

  mods = flatten_modules(unstack_layers(adapters))  # PEFT names each layer
  names = sorted(_hf_module(p) for p in mods)
  leafs = sorted({n.rsplit(".", 1)[1] for n in names})
  every = sorted(f"model.layers.{i}.{'self_attn' if l[0] in 'qkvo' else 'mlp'}.{l}"
                 for i in range(num_layers) for l in leafs)
  # PEFT reads a list as "modules whose name ends with these", a string as a full-match regex: use the list when it
  # selects exactly our set, else an exact alternation.
  target = leafs if every == names else "(" + "|".join(re.escape(n) for n in names) + ")"
  config = {
      "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model, "r": cfg.rank,
      "lora_alpha": cfg.alpha, "lora_dropout": cfg.dropout, "target_modules": target, "bias": "none",
      "fan_in_fan_out": False, "use_rslora": False, "inference_mode": True, "modules_to_save": None,
  }
  tensors = {}
  for path, ab in mods.items():
    key = f"base_model.model.{_hf_module(path)}"
    tensors[f"{key}.lora_A.weight"] = np.ascontiguousarray(np.asarray(ab["a"], np.float32).T)  # [r, in]
    tensors[f"{key}.lora_B.weight"] = np.ascontiguousarray(np.asarray(ab["b"], np.float32).T)  # [out, r]
  with paths.atomic_dir(directory) as tmp:
    (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2))
    save_file(tensors, str(tmp / "adapter_model.safetensors"))


def load_peft(directory) -> tuple[dict[str, Any], LoraConfig]:
  """Reads a PEFT LoRA adapter directory (safetensors only: pickled `adapter_model.bin` is refused)."""
  from safetensors import SafetensorError
  from safetensors.numpy import load_file

  d = pathlib.Path(directory)
  cfg_path, weights = d / "adapter_config.json", d / "adapter_model.safetensors"
  if not weights.is_file():
    extra = " (adapter_model.bin is a pickle and is never loaded; re-save with safe_serialization)" if (
        d / "adapter_model.bin").exists() else ""
    raise JaxrecError(f"{weights}: not found{extra}")
  try:
    c = json.loads(cfg_path.read_text())
  except (OSError, json.JSONDecodeError) as e:
    raise JaxrecError(f"{cfg_path}: unreadable adapter config ({e})") from None
  if c.get("peft_type") != "LORA" or c.get("rank_pattern") or c.get("alpha_pattern") or c.get("use_dora"):
    raise JaxrecError(f"{cfg_path}: only plain LoRA adapters (no rank/alpha patterns, no DoRA) are supported")
  alpha = float(c["lora_alpha"])
  if c.get("use_rslora"):  # rsLoRA scales by alpha/sqrt(r); expressed as an effective alpha over r
    alpha *= math.sqrt(c["r"])
  try:
    tensors = load_file(str(weights))
  except SafetensorError as e:
    raise JaxrecError(f"{weights}: corrupt or truncated safetensors file ({e})") from None
  flat = {}
  for key, value in tensors.items():
    m = _THEIRS.fullmatch(key.replace(".default.", "."))
    if not m:
      raise JaxrecError(f"{weights}: unexpected tensor {key!r} (expected ...layers.N.<module>.lora_A/B.weight)")
    flat[f"layers_{m[1]}/{m[2]}/{m[3]}/{'a' if m[4] == 'A' else 'b'}"] = jnp.asarray(value.T, jnp.float32)
  cfg = LoraConfig(rank=int(c["r"]), alpha=alpha, dropout=float(c.get("lora_dropout", 0.0)),
                   targets=tuple(sorted({p.rsplit("/", 1)[0] + "/kernel" for p in flat})))
  return unflatten(flat), cfg
