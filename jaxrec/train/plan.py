"""Will a run fit an accelerator? A config's train step and score step compiled for abstract parameters
(`jax.ShapeDtypeStruct`, nothing allocated) on a mesh of a given shape, and what XLA says about them per device.

  report = plan(config, llm_cfg, mesh, seq_len=256)

Parameters are shaped by `llm_cfg` (a shape-only config.json such as configs/shapes/llama2_7b.json, or the run's
own backbone), with the config's dtype, kept layers, LoRA, scan_layers, CF source and the trainable set of the
stage planned (the last by default: LoRA in CoLLM-FaissRet's default order). The batch is `config.batch_size`
prompts of `seq_len` tokens (`config.eval_batch_size` for the score step), sharded on the mesh's data axis; the
weights by the logical-axis table in `jaxrec.sharding`.

Bytes per device: params / adapters / optimizer state from their shardings (each leaf's bytes over the devices it
is split across), activations = XLA's temporary buffers of the compiled step (`memory_analysis().temp_size`).
FLOPs: XLA's cost analysis of the per-device program. Compiled here by XLA:CPU: a GPU's compiler fuses and schedules
differently, so treat activations as an estimate (±30% in our experience), parameters and FLOPs as exact.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxrec import sharding
from jaxrec.errors import JaxrecError
from jaxrec.llm import backbone
from jaxrec.llm.config import LlamaConfig
from jaxrec.llm.model import Decoder
from jaxrec.models import builder
from jaxrec.models.cf_source import CFSource
from jaxrec.models.llmrec import LLMRec, make_loss_fn, make_score_fn
from jaxrec.train.llm_task import params_axes
from jaxrec.train.optim import make_optimizer
from jaxrec.train.partition import partition, rules_from_stage
from jaxrec.train.steps import make_train_step


@dataclasses.dataclass
class Plan:
  devices: int
  params_bytes: float  # per device: frozen + trainable weights (adapters included)
  adapter_bytes: float
  optimizer_bytes: float
  train_activation_bytes: float  # XLA's temporaries of the train step
  train_total_bytes: float  # arguments + outputs (not aliased) + temporaries
  train_flops: float  # per device, one step
  score_activation_bytes: float
  score_total_bytes: float
  score_flops: float  # per device, one batch
  compile_s: float
  scan_temp_bytes: tuple[float, float] | None  # XLA:CPU's temporaries of the scanned (train, score) programs
  trainable: list[str]


def _bytes_per_device(tree) -> float:
  """Bytes one device holds of a ShapeDtypeStruct tree with shardings: each leaf's shard."""
  return float(sum(np.prod(leaf.sharding.shard_shape(leaf.shape)) * jnp.dtype(leaf.dtype).itemsize
                   for leaf in jax.tree.leaves(tree)))


def _place(tree, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def _place_like(opt_state, trainable, mesh):
  """The optimizer state placed as the loop places it: subtrees shaped like `trainable` (Adam's moments) take its
  shardings, everything else (step counts) is replicated."""
  like = jax.tree.structure(trainable)
  shards = jax.tree.map(lambda x: x.sharding, trainable)

  def walk(node):
    if jax.tree.structure(node) == like:
      return _place(node, shards)
    if isinstance(node, jax.ShapeDtypeStruct):
      return jax.ShapeDtypeStruct(node.shape, node.dtype, sharding=NamedSharding(mesh, P()))
    if isinstance(node, tuple) and hasattr(node, "_fields"):
      return type(node)(*[walk(c) for c in node])
    if isinstance(node, (tuple, list)):
      return type(node)(walk(c) for c in node)
    if isinstance(node, dict):
      return {k: walk(v) for k, v in node.items()}
    return node

  return walk(opt_state)


def abstract_model(config, llm_cfg: LlamaConfig, n_users: int, n_items: int) -> tuple[LLMRec, Any]:
  """(model, params as ShapeDtypeStructs) for `config.model` over backbone shape `llm_cfg`; nothing allocated."""
  m = config.model
  llm_cfg, _ = backbone.truncate_layers(llm_cfg, {}, int(m.keep_layers))
  dtype = backbone.DTYPES[m.dtype]
  source = None
  if m.cf.name != "none":
    dim = int(config.get("cf_train", {}).get("model", {}).get("embed_dim", 64))
    source = CFSource("tables", dim, m.cf.user_fallback)
  model = builder.make_model(m, llm_cfg, (0, 1), source)  # which two answer tokens does not change a shape

  def init():
    boxed = Decoder(llm_cfg, dtype=dtype, param_dtype=dtype).init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32))
    cf = None
    if source is not None:
      cf = {"user": jnp.zeros((n_users + 1, source.dim)), "item": jnp.zeros((n_items + 1, source.dim))}
    return builder.init_params(model, m, jax.random.key(1), nn.meta.unbox(boxed["params"]), cf)

  return model, jax.eval_shape(init)


def _batch(config, rows: int, seq_len: int, mesh) -> dict[str, jax.ShapeDtypeStruct]:
  n = int(config.model.proj_token_num)
  h = int(config.data.get("max_history", 10))
  shapes = dict(input_ids=((rows, seq_len), jnp.int32), attention_mask=((rows, seq_len), jnp.int32),
                user_slot_pos=((rows, n), jnp.int32), item_slot_pos=((rows, n), jnp.int32),
                user=((rows,), jnp.int32), item=((rows,), jnp.int32), label=((rows,), jnp.float32),
                history=((rows, h), jnp.int32), history_label=((rows, h), jnp.int8))
  return {k: jax.ShapeDtypeStruct(s, d, sharding=sharding.batch_sharding(mesh, len(s))) for k, (s, d) in
          shapes.items()}


def _compile(config, llm_cfg: LlamaConfig, mesh, seq_len: int, stage_index: int, n_users: int, n_items: int):
  """(params, trainable, opt_state, compiled train step, compiled score step) for abstract inputs on `mesh`."""
  model, params = abstract_model(config, llm_cfg, n_users, n_items)
  params = _place(params, sharding.tree_shardings(params, params_axes(model, params), mesh))
  stage = config.stages[stage_index]
  trainable, frozen = partition(params, rules_from_stage(stage.trainable, stage.get("frozen", ())))
  optimizer, _ = make_optimizer(stage.optimizer, 1000)
  opt_state = _place_like(jax.eval_shape(optimizer.init, trainable), trainable, mesh)
  rows = int(config.batch_size)
  for field in ("batch_size", "eval_batch_size"):
    if int(config[field]) % mesh.shape["data"]:
      raise JaxrecError(f"config.{field}: {config[field]} is not divisible by the mesh's data axis "
                        f"({mesh.shape['data']})")
  rng = jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=NamedSharding(mesh, P()))
  train = make_train_step(make_loss_fn(model), optimizer).lower(
      trainable, frozen, opt_state, _batch(config, rows, seq_len, mesh), rng).compile()
  score = jax.jit(make_score_fn(model)).lower(
      params, _batch(config, int(config.eval_batch_size), seq_len, mesh)).compile()
  return params, trainable, opt_state, train, score


def _memory(compiled) -> tuple[float, float]:
  """(temporaries, arguments + outputs not aliased + temporaries) in bytes, per device."""
  stats = compiled.memory_analysis()
  total = stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes + \
      stats.temp_size_in_bytes
  return float(stats.temp_size_in_bytes), float(total)


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get("flops", 0.0))


def plan(config, llm_cfg: LlamaConfig, mesh, seq_len: int = 256, stage_index: int = -1, n_users: int = 6040,
         n_items: int = 3706) -> Plan:
  """Compiles the train step of stage `stage_index` and the score step for abstract inputs on `mesh`.

  Under scan_layers, FLOPs and activations come from the same steps with 1 and 2 unscanned layers (cheap to
  compile), extrapolated linearly to L layers (every layer costs the same; the score step's temporaries are the
  2-layer program's, since inference reuses buffers from layer to layer): XLA's cost analysis counts a loop body
  once, and XLA:CPU's scanned program also holds a copy of the stacked weights in its loop state (reported apart,
  as `scan_temp_bytes`)."""
  import time

  t0 = time.perf_counter()
  params, trainable, opt_state, train, score = _compile(config, llm_cfg, mesh, seq_len, stage_index, n_users,
                                                        n_items)
  compile_s = time.perf_counter() - t0
  keep = int(config.model.keep_layers)
  layers = llm_cfg.num_layers if keep <= 0 else min(keep, llm_cfg.num_layers)
  t_act, t_total = _memory(train)
  s_act, s_total = _memory(score)
  scan_temp = (t_act, s_act) if config.model.scan_layers else None
  if config.model.scan_layers:
    # per layer: FLOPs and temporaries of 1- and 2-layer unscanned programs, extrapolated (every layer is alike)
    small = []
    for n in (1, 2):
      cfg = config.copy_and_resolve_references()
      cfg.model.scan_layers, cfg.model.keep_layers = False, n
      _, _, _, t, sc = _compile(cfg, llm_cfg, mesh, seq_len, stage_index, n_users, n_items)
      small.append((_flops(t), _flops(sc), _memory(t)[0], _memory(sc)[0]))
    tf, sf, ta = [a + (layers - 1) * (b - a) for a, b in list(zip(*small))[:3]]
    sa = small[1][3]  # inference reuses a layer's buffers for the next: its temporaries do not grow with depth
    t_total, s_total = t_total - t_act + ta, s_total - s_act + sa
    train_flops, score_flops, t_act, s_act = tf, sf, ta, sa
  else:
    train_flops, score_flops = _flops(train), _flops(score)
  from jaxrec.tree import flatten

  return Plan(
      devices=int(mesh.size), params_bytes=_bytes_per_device(params),
      adapter_bytes=_bytes_per_device(params.get("lora", {})), optimizer_bytes=_bytes_per_device(opt_state),
      train_activation_bytes=t_act, train_total_bytes=t_total, train_flops=train_flops,
      score_activation_bytes=s_act, score_total_bytes=s_total, score_flops=score_flops, compile_s=compile_s,
      scan_temp_bytes=scan_temp, trainable=sorted({p.split("/")[0] for p in flatten(trainable)}))
