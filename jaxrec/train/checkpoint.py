"""Orbax checkpoints of one stage, and the workdir layout.

  workdir/config.json                         resolved config of the run
  workdir/metrics.jsonl                       one JSON object per log / eval event
  workdir/checkpoints/<stage>/latest/<step>/  state {'trainable', 'opt_state', 'rng'} + meta JSON (step, epoch,
                                              early-stopping state): the resume point (1 kept)
  workdir/checkpoints/<stage>/best/<step>/    state {'trainable'} + meta JSON (metrics): best by the stage's
                                              early-stopping metric (1 kept)
  workdir/checkpoints/<stage>/done.json       written when the stage finished (best step and value)
  workdir/checkpoints/<stage>/diverged.json   written when the stage stopped on a non-finite loss (step, lr); a
                                              re-run may then change that stage's optimiser and resume

Only trainable leaves are saved: frozen ones (an LLM backbone, LightGCN's graph) are rebuilt from the config.
Orbax writes each step to a temporary directory and renames it when complete, so a killed run never leaves a
half-written checkpoint behind. Saves are synchronous: the train step donates its buffers right after.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxrec.paths import atomic_file
from jaxrec.train import faults


DIVERGED = "diverged.json"


def _abstract(tree):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class StageCheckpoints:
  """The `latest` and `best` orbax managers of one stage; each step holds a pytree `state` and a JSON `meta`."""

  def __init__(self, workdir: pathlib.Path | str, stage_name: str):
    self.root = pathlib.Path(workdir).absolute() / "checkpoints" / stage_name
    opts = ocp.CheckpointManagerOptions(max_to_keep=1, create=True, enable_async_checkpointing=False)
    self.latest = ocp.CheckpointManager(self.root / "latest", options=opts)
    self.best = ocp.CheckpointManager(self.root / "best", options=opts)

  @staticmethod
  def _save(mgr, step: int, state, meta) -> None:
    # A resumed run replays the same steps deterministically, so an existing step already holds this content.
    if step not in mgr.all_steps():
      with faults.during_save():
        mgr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))

  @staticmethod
  def _restore(mgr, template) -> tuple[Any, dict] | None:
    step = mgr.latest_step()
    if step is None:
      return None
    out = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(_abstract(template)),
                                                    meta=ocp.args.JsonRestore()))
    return out["state"], dict(out["meta"])

  def save_latest(self, step: int, state, meta: dict) -> None:
    self._save(self.latest, step, state, meta)

  def restore_latest(self, template) -> tuple[Any, dict] | None:
    """(state, meta) of the resume point, or None."""
    return self._restore(self.latest, template)

  def save_best(self, step: int, state, meta: dict) -> None:
    self._save(self.best, step, state, meta)

  def restore_best(self, template) -> tuple[Any, dict] | None:
    """(state, meta) of the best evaluation, or None."""
    return self._restore(self.best, template)

  @property
  def done_path(self) -> pathlib.Path:
    return self.root / "done.json"

  def mark_done(self, info: dict[str, Any]) -> None:
    with atomic_file(self.done_path, "w") as f:
      json.dump(info, f)

  def done_info(self) -> dict[str, Any] | None:
    return json.loads(self.done_path.read_text()) if self.done_path.exists() else None

  def mark_diverged(self, info: dict[str, Any]) -> None:
    with atomic_file(self.root / DIVERGED, "w") as f:
      json.dump(info, f)

  def clear_diverged(self) -> None:
    (self.root / DIVERGED).unlink(missing_ok=True)

  @staticmethod
  def diverged_info(workdir, stage_name) -> dict[str, Any] | None:
    """What `mark_diverged` recorded for that stage, if it diverged and has not finished since."""
    root = pathlib.Path(workdir) / "checkpoints" / str(stage_name)
    if (root / "done.json").exists() or not (root / DIVERGED).exists():
      return None
    return json.loads((root / DIVERGED).read_text())

  def close(self) -> None:
    self.latest.close()
    self.best.close()
