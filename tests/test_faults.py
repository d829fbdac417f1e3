"""Faults: a diverging stage, a full disk, and kill -9 at three points of real runs (one of them inside a checkpoint
save). Each must end in one line and leave a workdir that resumes to exactly what an uninterrupted run gives."""

import errno
import json
import math
import os
import pathlib
import re
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from conftest import REPO
from jaxrec import cf, evaluate
from jaxrec.cf import synthetic
from jaxrec.errors import JaxrecError
from jaxrec.tree import merge
from jaxrec.train import ArrayBatcher, loop, stage_config, train
from jaxrec.train.checkpoint import StageCheckpoints
from launch import _cli, train as launch_train


class _Poisoned:
  """A batcher whose batches from global step `at` on carry NaN labels: the loss goes NaN there."""

  def __init__(self, inner, at):
    self.inner, self.at, self.steps_per_epoch = inner, at, inner.steps_per_epoch

  def batches(self, epoch, start=0):
    for i, b in enumerate(self.inner.batches(epoch, start)):
      if epoch * self.steps_per_epoch + start + i + 1 >= self.at:
        b = dict(b, label=np.full_like(b["label"], np.nan))
      yield b


def _loop_pieces(tmp_path):
  data = synthetic.make_dataset(n_users=60, n_items=40, rows_per_user=20, seed=1)
  model = cf.build_model(ml_collections.ConfigDict({"name": "mf", "embed_dim": 8, "loss": "bce"}), data.n_users,
                         data.n_items)
  config = ml_collections.ConfigDict({"seed": 3, "batch_size": 64, "eval_batch_size": 512, "log_every": 5,
                                      "checkpoint_every": 4})
  config.stages = [stage_config(name="s", num_epochs=2, eval_every=7, optimizer={"lr": 0.05})]
  score = jax.jit(model.logits)
  kw = dict(init_params=model.init(jax.random.PRNGKey(0)),
            loss_fn=lambda t, f, b, r: model.loss_fn(merge(t, f), b, r),
            evaluate_fn=lambda p: evaluate.evaluate_ctr(lambda b: score(p, b), data.splits["valid"]), progress=False)
  return config, ArrayBatcher(evaluate.split_arrays(data.splits["train"]), 64, seed=3), kw


def test_divergence_stops_the_stage_and_a_lower_lr_resumes_from_the_last_finite_checkpoint(tmp_path):
  config, batcher, kw = _loop_pieces(tmp_path)
  workdir = tmp_path / "w"
  with pytest.raises(JaxrecError) as e:
    train(config, workdir, train_data=_Poisoned(batcher, at=10), **kw)
  msg = str(e.value)
  assert "\n" not in msg and "stage 's' diverged at step 10" in msg and "config.stages[0].optimizer.lr" in msg
  assert "last finite checkpoint (step 8)" in msg  # checkpoint_every=4: step 8 was saved, nothing after step 9
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert all(r.get("loss") is None or math.isfinite(r["loss"]) for r in records)
  assert max(r["step"] for r in records) < 10  # nothing from the diverged steps was logged
  ckpt = StageCheckpoints(workdir, "s")
  try:
    assert ckpt.latest.latest_step() == 8 and ckpt.best.latest_step() == 7
  finally:
    ckpt.close()

  same = config.copy_and_resolve_references()
  same.batch_size = 32  # anything but the diverged stage's optimiser still trains differently: refused
  with pytest.raises(JaxrecError, match="holds a run with a different config"):
    train(same, workdir, train_data=batcher, **kw)

  lower = config.copy_and_resolve_references()
  lower.stages[0].optimizer.lr = 0.01
  resumed = train(lower, workdir, train_data=batcher, **kw)
  assert resumed.stages[0]["steps"] == 2 * batcher.steps_per_epoch
  assert json.loads((workdir / "config.json").read_text())["stages"][0]["optimizer"]["lr"] == 0.01
  assert not (workdir / "checkpoints/s/diverged.json").exists()
  first_after = [r for r in map(json.loads, (workdir / "metrics.jsonl").read_text().splitlines())][len(records)]
  assert first_after["step"] > 8 and first_after["lr"] < 0.01  # resumed at step 8 on the new schedule


def test_parameters_that_overflow_under_a_finite_loss_are_never_checkpointed(tmp_path):
  """loss = Σ tanh(w) stays finite (±1) however large w grows, and its gradient vanishes; AdamW's decay (lr 10,
  weight decay 100: w ← -999 w) overflows w to inf within a few steps, steps before the loss turns NaN. The
  parameter check before a save stops the stage there, so the last checkpoint holds finite weights."""
  import jax.numpy as jnp

  config = ml_collections.ConfigDict({"seed": 0, "batch_size": 2, "eval_batch_size": 2, "log_every": 100,
                                      "checkpoint_every": 1})
  config.stages = [stage_config(name="s", num_epochs=20, eval_every=1000,
                                optimizer={"lr": 10.0, "weight_decay": 100.0, "schedule": "constant"})]
  init = {"params": {"w": jnp.ones(4)}}
  data = ArrayBatcher({"x": np.zeros(4, np.float32)}, 2, seed=0)
  kw = dict(init_params=init, loss_fn=lambda t, f, b, r: (jnp.sum(jnp.tanh(t["params"]["w"])), {}),
            evaluate_fn=lambda p: {"auc": 0.5}, train_data=data, progress=False)
  with pytest.raises(JaxrecError) as e:
    train(config, tmp_path / "w", **kw)
  m = re.search(r"stage 's' diverged at step (\d+) .*the last finite checkpoint \(step (\d+)\) is kept", str(e.value))
  assert m and int(m.group(2)) == int(m.group(1)) - 1, str(e.value)  # checkpoints every step: the one before
  ckpt = StageCheckpoints(tmp_path / "w", "s")
  try:
    assert ckpt.latest.all_steps() == [int(m.group(2))]
  finally:
    ckpt.close()
  with pytest.MonkeyPatch.context() as mp:  # without the parameter check the loss notices later...
    mp.setattr(loop, "all_finite", lambda tree: jnp.asarray(True))
    with pytest.raises(JaxrecError) as late:
      train(config, tmp_path / "unchecked", **kw)
  # ...and by then it has checkpointed the infinite weights of a step the check refused
  kept = re.search(r"the last finite checkpoint \(step (\d+)\)", str(late.value))
  assert kept and int(kept.group(1)) >= int(m.group(1)), str(late.value)


def test_full_disk_ends_in_one_line_and_keeps_a_loadable_checkpoint(shared_data, tmp_path, monkeypatch, capsys):
  workdir = tmp_path / "w"
  argv = ["train.py", f"--config={REPO}/configs/baselines/mf.py:tiny", f"--config.data.root={shared_data}",
          f"--workdir={workdir}", "--noprogress"]
  real_save, calls = StageCheckpoints.save_latest, []

  def full_disk(self, step, state, meta):
    calls.append(step)
    if len(calls) == 2:
      raise OSError(errno.ENOSPC, "No space left on device", str(self.root / "latest"))
    real_save(self, step, state, meta)

  monkeypatch.setattr(StageCheckpoints, "save_latest", full_disk)
  with pytest.raises(SystemExit) as e:
    _cli.run(launch_train.main, argv)
  lines = capsys.readouterr().err.strip().splitlines()
  assert e.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: no space left on device while "
                                                                        "writing"), lines
  assert not (workdir / "metrics.json").exists()
  ckpt = StageCheckpoints(workdir, "cf")
  try:
    assert ckpt.latest.all_steps() == [calls[0]]  # the first save, intact and loadable
  finally:
    ckpt.close()
  monkeypatch.setattr(StageCheckpoints, "save_latest", real_save)
  _cli.run(launch_train.main, argv)  # space freed: the same command resumes and finishes
  assert json.loads((workdir / "metrics.json").read_text())["splits"]["valid"]["auc"] > 0


def test_real_full_disk_during_a_checkpoint_save(shared_data, tmp_path, capsys):
  """A 6 MB tmpfs as the workdir: orbax's writer fails inside a save (tensorstore's RESOURCE_EXHAUSTED); after
  the file system grows the same command resumes. Where mounting is not allowed, orbax's error is raised from the
  save instead (the same text)."""
  mnt = tmp_path / "small"
  mnt.mkdir()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6M", "tmpfs", str(mnt)], capture_output=True)
  argv = ["train.py", f"--config={REPO}/configs/baselines/mf.py:tiny", f"--config.data.root={shared_data}",
          f"--workdir={mnt / 'w'}", "--noprogress"]
  try:
    if mounted.returncode == 0:
      with pytest.raises(SystemExit) as e:
        _cli.run(launch_train.main, argv)
    else:
      real = StageCheckpoints.save_latest

      def full(self, step, state, meta):
        raise ValueError(f'RESOURCE_EXHAUSTED: Error writing "x": Failed writing: "{self.root}/latest/d": Failed '
                         f"to write 2222506 bytes to file 8: No space left on device [os_error_code='28']")

      StageCheckpoints.save_latest = full
      try:
        with pytest.raises(SystemExit) as e:
          _cli.run(launch_train.main, argv)
      finally:
        StageCheckpoints.save_latest = real
    lines = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: no space left on device while writing {mnt / 'w' / 'checkpoints'}"), lines
    if mounted.returncode == 0:
      subprocess.run(["mount", "-o", "remount,size=64M", str(mnt)], check=True)
    _cli.run(launch_train.main, argv)  # room again: the same command resumes and finishes
    assert json.loads((mnt / "w" / "metrics.json").read_text())["splits"]["valid"]["auc"] > 0
  finally:
    if mounted.returncode == 0:
      subprocess.run(["umount", str(mnt)], check=False)


# --- kill -9 ---------------------------------------------------------------------------------------------------

def _train(args, workdir, kill_at=None):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  env.pop("JAXREC_KILL_AT", None)
  if kill_at:
    env["JAXREC_KILL_AT"] = kill_at
  return subprocess.run([sys.executable, str(REPO / "launch" / "train.py"), *args, f"--workdir={workdir}",
                         "--noprogress"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _outputs(workdir: pathlib.Path) -> dict:
  """What a finished run hands over: final metrics, and the exact bytes of its embeddings and adapters."""
  out = {"metrics": json.loads((workdir / "metrics.json").read_text())["splits"]}
  for sub in ("embeddings", "adapter"):
    for f in sorted((workdir / sub).glob("*")) if (workdir / sub).is_dir() else []:
      out[f"{sub}/{f.name}"] = f.read_bytes()
  return out


def _kill_chain(args, tmp_path, points):
  """One workdir killed at each point in turn (each kill in the run that resumed the previous one; `step:n` counts
  the steps of that process), then resumed to the end: the uninterrupted run's exact outputs, and no metrics.json
  after any kill. One chain instead of a kill and resume per point saves processes (CI time)."""
  full = _train(args, tmp_path / "full")
  assert full.returncode == 0, full.stderr[-2000:]
  workdir = tmp_path / "chain"
  kills = []
  for point in points:
    killed = _train(args, workdir, kill_at=point)
    assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-2000:])
    assert not (workdir / "metrics.json").exists()
    kills.append(killed)
  resumed = _train(args, workdir)  # the dead run's lock went with it
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  expected = _outputs(tmp_path / "full")
  assert _outputs(workdir) == expected
  return expected, kills


@pytest.mark.slow
def test_kill_9_real_cf_run(shared_data, tmp_path):
  """MF at its real size (d=256, batch 1024) on CoLLM's ML-1M split, 2 epochs of 33 steps, one workdir killed three
  times: before any checkpoint (step 20), inside the second checkpoint save of the run that started again, and in
  the run that resumed from the first epoch's checkpoint (its 12th step: global step 45); the final resume ends
  with the uninterrupted run's exact outputs."""
  args = [f"--config={REPO}/configs/baselines/mf.py", f"--config.data.root={shared_data}",
          "--config.stages[0].num_epochs=2"]
  out, _ = _kill_chain(args, tmp_path, ["step:20", "save:2", "step:12"])
  assert {"embeddings/item.npy", "embeddings/user.npy"} <= set(out)


@pytest.mark.slow
def test_kill_9_llm_tiny_run(shared_data, tmp_path):
  """CoLLM's :tiny run (CF pre-training, then two LLM stages of 4 steps), one workdir killed three times: in the CF
  model (step 3, nothing saved yet), inside a checkpoint save of the first LLM stage (its 7th save: fece's step 4),
  and in the last stage (the resumed run redoes fece's steps 3-4, then its 4th step is lora's step 2); the final
  resume ends with the uninterrupted run's exact outputs."""
  args = [f"--config={REPO}/configs/ml1m.py:tiny", f"--config.data.root={shared_data}"]
  out, kills = _kill_chain(args, tmp_path, ["step:3", "save:7", "step:4"])
  assert "[fece] step 4" in kills[2].stdout  # the third run finished fece before its kill: the kill was in lora
  assert any(k.startswith("adapter/") for k in out) and "embeddings/item_llm.npy" in out
