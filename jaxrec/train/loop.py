"""The plain training loop: stages in order, periodic validation, early stopping, best + latest checkpoints.

    result = loop.train(config, workdir, init_params=variables, loss_fn=loss_fn, evaluate_fn=evaluate_fn,
                        train_data=ArrayBatcher(arrays, config.batch_size, config.seed))

`loss_fn(trainable, frozen, batch, rng) -> (loss, aux)` and `evaluate_fn(params) -> {metric: float}` are the only
model-specific parts. Re-running with the workdir of a killed run continues each unfinished stage from its latest
checkpoint (data position, optimiser state, RNG and early-stopping state included) and gives the same result as an
uninterrupted run; finished stages are skipped and their best parameters reloaded (metrics.jsonl then repeats the
records written after the last checkpoint: readers keep the last record per (stage, step, event)). See
`jaxrec.train.checkpoint` for the workdir layout and `jaxrec.train.config` for the stage schema.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from jaxrec.errors import JaxrecError
from jaxrec.train import faults
from jaxrec.train.checkpoint import StageCheckpoints
from jaxrec.train.config import validate_loop_config
from jaxrec.train.optim import make_optimizer
from jaxrec.train.partition import overlay, partition, rules_from_stage
from jaxrec.train.steps import FINITE, all_finite, make_train_step
from jaxrec.train.workdir import write_config
from jaxrec.tree import merge


@dataclasses.dataclass
class TrainResult:
  params: Any  # full params after the last stage (each stage's best trainable leaves in place)
  stages: list[dict[str, Any]]  # per stage: name, best_step, best_value, metric, steps, stopped_early


class MetricsLog:
  """Appends one JSON object per line to workdir/metrics.jsonl and writes the same scalars as TensorBoard events
  under workdir/tb/ (tensorboardX): `<stage>/train/<name>` and `<stage>/valid/<metric>` against the stage's step.

  A resumed run writes a new event file beside the old ones; TensorBoard, like metrics.jsonl's readers, keeps the
  last value per (tag, step).
  """

  def __init__(self, workdir: pathlib.Path):
    self.path = workdir / "metrics.jsonl"
    self.tb_dir = workdir / "tb"
    self._writer = None

  def write(self, record: Mapping[str, Any]) -> None:
    record = {k: _jsonable(v) for k, v in record.items()}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    if self._writer is None:
      from tensorboardX import SummaryWriter  # only training writes events

      self._writer = SummaryWriter(str(self.tb_dir), flush_secs=30)
    group = "train" if record.get("event") == "train" else "valid"
    for key, value in record.items():
      if key not in ("event", "stage", "step") and isinstance(value, (int, float)) and not isinstance(value, bool):
        self._writer.add_scalar(f"{record['stage']}/{group}/{key}", value, int(record["step"]))

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None


def _jsonable(v):
  if isinstance(v, (np.generic, np.ndarray, jax.Array)):
    v = np.asarray(v).item()
  if isinstance(v, float) and not math.isfinite(v):
    return None
  return v


def train(config, workdir, *, init_params, loss_fn: Callable,
          evaluate_fn: Callable[[Any], Mapping[str, float]] | None = None, train_data=None,
          stage_inputs: Callable[[Any], tuple[Any, Callable]] | None = None, progress: bool = True) -> TrainResult:
  """Runs every stage of `config.stages` in order (resuming from the workdir) and returns the final params.

  Args:
    config: ConfigDict with seed, batch_size, log_every, checkpoint_every and stages (see jaxrec.train.config).
    workdir: run directory; created if missing.
    init_params: the full initial params pytree (nested dicts); 'scratch' stages start from it.
    loss_fn: (trainable, frozen, batch, rng) -> (scalar loss, aux dict).
    evaluate_fn: full params -> flat {metric name: value}; must contain each stage's early-stopping metric.
    train_data: has `steps_per_epoch` and `batches(epoch, start)` (e.g. `ArrayBatcher`).
    stage_inputs: instead of `train_data` / `evaluate_fn`, a function stage -> (train_data, evaluate_fn), for stages
      that read different inputs (e.g. CoLLM's text-only first stage and its ID-slot second stage).
    progress: show the tqdm bar.
  """
  validate_loop_config(config, min_stages=0)  # the family checked its own minimum (closed-form models: none)
  if (stage_inputs is None) == (train_data is None or evaluate_fn is None):
    raise TypeError("loop.train: pass either train_data and evaluate_fn, or stage_inputs")
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  write_config(config, workdir)
  log = MetricsLog(workdir)
  params, summaries = init_params, []
  try:
    for index, stage in enumerate(config.stages):
      if stage_inputs is not None:
        train_data, evaluate_fn = stage_inputs(stage)
      if train_data.steps_per_epoch < 1:
        raise JaxrecError("the training split has no rows (check config.data and config.batch_size)")
      start = init_params if stage.init_from == "scratch" else params
      params, summary = run_stage(config, stage, index, start, workdir=workdir, log=log, loss_fn=loss_fn,
                                  evaluate_fn=evaluate_fn, train_data=train_data, progress=progress)
      summaries.append(summary)
  finally:
    log.close()
  return TrainResult(params=params, stages=summaries)


def _improved(value: float, best: float | None, mode: str) -> bool:
  if best is None:
    return not math.isnan(value)
  return value > best if mode == "max" else value < best


def run_stage(config, stage, index: int, params, *, workdir: pathlib.Path, log: MetricsLog, loss_fn: Callable,
              evaluate_fn: Callable, train_data, progress: bool = True) -> tuple[Any, dict[str, Any]]:
  """Trains one stage from `params` (or its latest checkpoint); returns (params with the best trainable leaves,
  summary)."""
  trainable, frozen = partition(params, rules_from_stage(stage.trainable, stage.get("frozen", ())))
  ckpt = StageCheckpoints(workdir, stage.name)
  try:
    done = ckpt.done_info()
    if done is not None:  # finished in an earlier run: reload its best parameters
      best, _ = ckpt.restore_best({"trainable": trainable})
      return overlay(params, best["trainable"]), done

    spe = train_data.steps_per_epoch
    total = spe * int(stage.num_epochs)
    if stage.max_steps > 0:
      total = min(total, int(stage.max_steps))
    optimizer, schedule = make_optimizer(stage.optimizer, total)
    opt_state = _place_like(optimizer.init(trainable), trainable)
    rng = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), index)
    meta = {"step": 0, "best_value": None, "best_step": -1, "bad_evals": 0, "stopped_early": False}
    restored = ckpt.restore_latest({"trainable": trainable, "opt_state": opt_state, "rng": rng})
    if restored is not None:
      state, meta = restored
      trainable, opt_state, rng = state["trainable"], state["opt_state"], state["rng"]

    # The step donates `trainable`; copy once so the caller's arrays (e.g. init_params) stay alive.
    trainable = jax.tree.map(jnp.copy, trainable)
    train_step = make_train_step(loss_fn, optimizer)
    es = stage.early_stopping
    eval_every = int(stage.eval_every) if stage.eval_every > 0 else spe
    log_every, ckpt_every = int(config.get("log_every", 50)), int(config.get("checkpoint_every", 500))
    step = int(meta["step"])
    bar = tqdm(total=total, initial=step, desc=f"stage {stage.name}", disable=not progress, dynamic_ncols=True)
    batches, window, n_examples, t_last = None, [], 0, time.perf_counter()

    ckpt.clear_diverged()  # a resumed diverged stage (with a new lr) goes on from its last finite checkpoint
    unchecked = []  # (step, FINITE flag) not yet read back: reading a step late keeps dispatch ahead of compute

    def check_finite(upto: int = 0, params=None) -> None:
      """Reads back the divergence flags of all but the newest `upto` steps, and with `params` (a state about to be
      kept) checks its leaves too; stops the stage at the first bad step."""
      if params is not None:
        unchecked.append((step, all_finite(params)))
      while len(unchecked) > upto:
        at, flag = unchecked.pop(0)
        if not bool(jax.device_get(flag)):
          last = ckpt.latest.latest_step()
          ckpt.mark_diverged({"step": at, "lr": float(stage.optimizer.lr), "last_checkpoint": last})
          kept = (f"the last finite checkpoint (step {last}) is kept; lower config.stages[{index}].optimizer.lr and "
                  f"re-run the same command to resume from it" if last is not None else
                  f"no checkpoint was saved before it; lower config.stages[{index}].optimizer.lr and re-run the same "
                  f"command to start the stage again")
          raise JaxrecError(f"stage {stage.name!r} diverged at step {at} (non-finite loss, gradient or parameters); "
                            f"{kept}")

    def save_latest():
      check_finite(params=trainable)  # a checkpoint never holds a diverged state
      ckpt.save_latest(step, {"trainable": trainable, "opt_state": opt_state, "rng": rng}, dict(meta, step=step))

    while step < total and not meta["stopped_early"]:
      epoch, pos = divmod(step, spe)
      if batches is None or pos == 0:
        batches = train_data.batches(epoch, pos)
      batch = next(batches)
      trainable, opt_state, m = train_step(trainable, frozen, opt_state, batch, jax.random.fold_in(rng, step))
      step += 1
      faults.at("step")
      unchecked.append((step, m.pop(FINITE)))
      check_finite(upto=1)
      window.append(m)
      n_examples += len(next(iter(batch.values())))
      bar.update(1)

      if step % log_every == 0 or step == total:
        check_finite()
        window = jax.device_get(window)
        now = time.perf_counter()
        record = {"event": "train", "stage": stage.name, "step": step, "epoch": step / spe,
                  "lr": float(schedule(step - 1)), "examples_per_s": n_examples / max(now - t_last, 1e-9),
                  "step_time_s": (now - t_last) / len(window)}
        record.update({k: float(np.mean([w[k] for w in window])) for k in window[0]})
        log.write(record)
        bar.set_postfix(step=step, loss=f"{record['loss']:.4f}")
        window, n_examples, t_last = [], 0, now

      if step % eval_every == 0 or step == total:
        check_finite(params=trainable)  # evaluate (and maybe save as best) only finite parameters
        t_eval = time.perf_counter()
        metrics = dict(evaluate_fn(merge(trainable, frozen)))
        if es.metric not in metrics:
          raise JaxrecError(f"config.stages[{index}].early_stopping.metric: {es.metric!r} is not among the "
                            f"evaluated metrics {sorted(metrics)}")
        value = float(metrics[es.metric])
        if _improved(value, meta["best_value"], es.mode):
          meta.update(best_value=value, best_step=step, bad_evals=0)
          ckpt.save_best(step, {"trainable": trainable}, {"step": step, "metrics": _clean(metrics)})
        else:
          meta["bad_evals"] += 1
          if es.patience > 0 and meta["bad_evals"] >= int(es.patience):
            meta["stopped_early"] = True
        log.write({"event": "eval", "stage": stage.name, "step": step, "epoch": step / spe,
                   **_clean(metrics), f"best_{es.metric}": meta["best_value"]})
        bar.write(f"[{stage.name}] step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                                                               if isinstance(v, float) and "/" not in k))
        save_latest()  # after every evaluation, so the early-stopping state is never replayed differently
        t_last += time.perf_counter() - t_eval  # examples/s counts training time only
      elif step % ckpt_every == 0:
        save_latest()
    save_latest()
    bar.close()

    best = ckpt.restore_best({"trainable": trainable})
    if best is None:
      raise JaxrecError(f"stage {stage.name!r}: no evaluation produced a finite {es.metric!r}")
    summary = {"name": stage.name, "metric": es.metric, "best_value": meta["best_value"],
               "best_step": meta["best_step"], "steps": step, "stopped_early": bool(meta["stopped_early"])}
    ckpt.mark_done(summary)
    return merge(best[0]["trainable"], frozen), summary
  finally:
    ckpt.close()


def _place_like(opt_state, trainable):
  """The optimiser's step counters, made without a sharding, replicated on the trainable leaves' mesh.

  The step returns them on that mesh; a first call with unplaced counters is a different program, so every stage
  compiled its step twice (12-15 s each for the tiny test LLM on a busy CPU, more for a real one).
  """
  meshes = [leaf.sharding.mesh for leaf in jax.tree.leaves(trainable)
            if isinstance(getattr(leaf, "sharding", None), NamedSharding)]
  if not meshes:
    return opt_state
  replicated = NamedSharding(meshes[0], P())
  return jax.tree.map(lambda x: x if isinstance(getattr(x, "sharding", None), NamedSharding)
                      else jax.device_put(x, replicated), opt_state)


def _clean(metrics: Mapping[str, Any]) -> dict[str, Any]:
  return {k: _jsonable(v) for k, v in metrics.items()}


def restore_params(config, workdir, init_params):
  """The params a finished (or partly finished) run ends with: each stage's best trainable leaves, in order.

  Mirrors `train`: a 'scratch' stage restarts from `init_params`. Stages without a best checkpoint are skipped.
  """
  params = init_params
  for stage in config.stages:
    start = init_params if stage.init_from == "scratch" else params
    trainable, _ = partition(start, rules_from_stage(stage.trainable, stage.get("frozen", ())))
    ckpt = StageCheckpoints(workdir, stage.name)
    try:
      best = ckpt.restore_best({"trainable": trainable})
    finally:
      ckpt.close()
    params = start if best is None else overlay(start, best[0]["trainable"])
  return params
