"""Nested-dict parameter trees: '/'-joined paths, the deep merge of disjoint trees, and their content digest.

The lowest layer of jaxrec (no jaxrec imports), shared by the loaders, LoRA, the models and the train loop, so that
every part names a parameter the same way: `layers_3/self_attn/q_proj/kernel`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np


def flatten(tree: Mapping[str, Any], prefix: str = "", sep: str = "/") -> dict[str, Any]:
  """{'a': {'b': x}} → {'a/b': x} (sep='.': the dotted paths of `ConfigDict.update_from_flattened_dict`)."""
  out = {}
  for key, value in tree.items():
    path = f"{prefix}{sep}{key}" if prefix else str(key)
    if isinstance(value, Mapping):
      out.update(flatten(value, path, sep))
    else:
      out[path] = value
  return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
  """Inverse of `flatten`."""
  out: dict[str, Any] = {}
  for path, value in flat.items():
    node = out
    *parents, last = path.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[last] = value
  return out


def merge(a: Mapping, b: Mapping) -> dict:
  """Deep merge of two disjoint nested dicts (e.g. trainable and frozen parameters); a shared leaf is an error."""
  out = dict(b)
  for key, value in a.items():
    if key in out and isinstance(value, Mapping) and isinstance(out[key], Mapping):
      out[key] = merge(value, out[key])
    elif key in out:
      raise ValueError(f"merge: {key!r} is in both trees")
    else:
      out[key] = value
  return out


def update_digest(h, tree: Any) -> None:
  """Feeds every leaf of `tree` (its path, dtype, shape and bytes) into the hashlib object `h`: equal digests mean
  equal contents (cache keys of what is computed from parameters)."""
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    arr = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{jax.tree_util.keystr(path)}{arr.dtype}{arr.shape}".encode())
    h.update(arr.tobytes())
