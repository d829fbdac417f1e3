"""The two layouts of a decoder's layer parameters, and pure conversions between them.

  per layer  {'layers_0': {...}, 'layers_1': {...}, ...}   what the loaders, PEFT files and LoRA targets speak
  stacked    {'layers': {... leaves [L, ...] ...}}         what `Decoder(scan_layers=True)` reads (one `nn.scan`)

Weights are loaded and adapters created per layer (regex targets such as `layers_\\d+/self_attn/q_proj/kernel`
keep their meaning), then stacked once before training; exports unstack. Adapters (the `lora` collection) stack
the same way, which needs every layer adapted alike: `nn.scan` runs one layer program L times.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp

from jaxrec.errors import JaxrecError

_LAYER = re.compile(r"layers_(\d+)$")


def stack_layers(tree: dict[str, Any], what: str = "params") -> dict[str, Any]:
  """Per-layer → stacked: `layers_i` subtrees become one `layers` subtree whose leaves are [L, ...]."""
  layers = sorted((int(m[1]), k) for k in tree if (m := _LAYER.match(k)))
  rest = {k: v for k, v in tree.items() if not _LAYER.match(k)}
  if not layers:
    return dict(rest)
  if [i for i, _ in layers] != list(range(len(layers))):
    raise JaxrecError(f"{what}: only layers {[i for i, _ in layers]} have entries (e.g. LoRA targets on some layers "
                      f"only); config.model.scan_layers needs every layer alike")
  first = jax.tree_util.tree_structure(tree[layers[0][1]])
  for i, k in layers:
    if jax.tree_util.tree_structure(tree[k]) != first:
      raise JaxrecError(f"{what}: layer {i} has other entries than layer 0 (e.g. LoRA targets on some layers only); "
                        f"config.model.scan_layers needs every layer alike")
  stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[tree[k] for _, k in layers])
  return {**rest, "layers": stacked}


def unstack_layers(tree: dict[str, Any]) -> dict[str, Any]:
  """Stacked → per layer (the inverse of `stack_layers`)."""
  if "layers" not in tree:
    return dict(tree)
  stacked = tree["layers"]
  n = jax.tree_util.tree_leaves(stacked)[0].shape[0]
  out = {k: v for k, v in tree.items() if k != "layers"}
  for i in range(n):
    out[f"layers_{i}"] = jax.tree_util.tree_map(lambda x, i=i: x[i], stacked)
  return out


def stacked_axes(per_layer_axes: dict[str, Any]) -> dict[str, Any]:
  """Logical axes of stacked params from per-layer ones: the new leading axis is 'layers' (never sharded)."""
  spec = jax.sharding.PartitionSpec
  first = per_layer_axes.get("layers_0")
  out = {k: v for k, v in per_layer_axes.items() if not _LAYER.match(k)}
  if first is not None:
    out["layers"] = jax.tree_util.tree_map(lambda s: spec("layers", *s), first,
                                           is_leaf=lambda s: isinstance(s, spec))
  return out
