"""Device mesh and the one table that maps logical axis names to mesh axes.

Every parameter declares logical axes (`("embed", "q_heads")`, …) where it is defined; `LOGICAL_RULES` below is the
only place that says which mesh axis each one lands on. Batches are sharded over `data`, weights over `model` where
the dimension divides evenly (otherwise that dimension is replicated rather than failing).

Multi-host: call `jax.distributed.initialize()` before anything else on every host (see README); `make_mesh` then
sees all global devices and the same code runs unchanged.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

LOGICAL_RULES: tuple[tuple[str, str | None], ...] = (
    ("batch", "data"),
    ("vocab", "model"),
    ("embed", None),
    ("q_heads", "model"),
    ("kv_heads", "model"),
    ("mlp", "model"),
    ("norm", None),
    ("lora_rank", None),
    ("layers", None),  # the stacked layer axis of scan_layers: each device holds every layer of its shards
)


def make_mesh(data: int = -1, model: int = 1, devices=None) -> Mesh:
  """A (data, model) mesh; -1 takes what is left. Built directly as `Mesh` so axis types stay Auto (jax.make_mesh
  would default to Explicit, under which embedding gathers fail)."""
  devices = list(jax.devices() if devices is None else devices)
  n = len(devices)
  if data == -1:
    data = n // model
  if model == -1:
    model = n // data
  if data * model != n:
    raise ValueError(f"mesh data={data} × model={model} does not use the {n} available devices")
  return Mesh(np.asarray(devices).reshape(data, model), ("data", "model"))


def _rule(name: str | None) -> str | None:
  return dict(LOGICAL_RULES).get(name) if name is not None else None


def spec_for(axes: tuple[str | None, ...], shape: tuple[int, ...], mesh: Mesh) -> P:
  """PartitionSpec for a leaf with logical `axes`; a dimension that does not divide its mesh axis is replicated."""
  out = []
  for name, dim in zip(axes, shape):
    mesh_axis = _rule(name)
    out.append(mesh_axis if mesh_axis is not None and dim % mesh.shape[mesh_axis] == 0 else None)
  return P(*out)


def logical_axes(boxed_tree) -> Any:
  """Logical axes of every leaf of a tree of `nn.Partitioned` boxes (e.g. from `jax.eval_shape(model.init, …)`)."""
  return nn.get_partition_spec(boxed_tree)


def tree_shardings(tree, axes_tree, mesh: Mesh):
  """NamedShardings for `tree` given a same-structured tree of logical axis tuples (None leaves = replicate)."""

  def one(leaf, axes):
    axes = tuple(axes) if axes is not None else (None,) * np.ndim(leaf)
    return NamedSharding(mesh, spec_for(axes, np.shape(leaf), mesh))

  return jax.tree.map(one, tree, axes_tree, is_leaf=lambda x: isinstance(x, P) or x is None)


def shard_tree(tree, axes_tree, mesh: Mesh):
  """Places every leaf of `tree` on `mesh` according to its logical axes."""
  return jax.device_put(tree, tree_shardings(tree, axes_tree, mesh))


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  return NamedSharding(mesh, P("data", *([None] * (ndim - 1))))


def shard_batch(batch: dict[str, Any], mesh: Mesh) -> dict[str, Any]:
  """Puts each array of a host batch on the mesh, split over `data` along its first (batch) dimension.

  Single-host only: each process passes its full batch. Multi-host callers build global arrays with
  `jax.make_array_from_process_local_data(batch_sharding(mesh, x.ndim), x)` instead.
  """
  if jax.process_count() > 1:
    return {k: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(v)), np.asarray(v))
            for k, v in batch.items()}
  return {k: jax.device_put(np.asarray(v), batch_sharding(mesh, np.ndim(v))) for k, v in batch.items()}
