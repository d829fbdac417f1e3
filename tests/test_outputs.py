"""What a run shows besides metrics.json: TensorBoard events equal to metrics.jsonl, and the PNGs results.md links
(valid PNGs of the expected size, the same bytes when drawn twice)."""

import json
import struct

import jax
import ml_collections
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from jaxrec import cf, evaluate
from jaxrec.cf import synthetic
from jaxrec.tree import merge
from jaxrec.train import ArrayBatcher, plots, results, stage_config, train


def _png_size(path):
  data = path.read_bytes()
  assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
  return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A two-stage run of MF on planted-signal data, killed nowhere: (workdir, config, TrainResult, finals)."""
  data = synthetic.make_dataset(n_users=60, n_items=40, rows_per_user=20, seed=1)
  model = cf.build_model(ml_collections.ConfigDict({"name": "mf", "embed_dim": 8, "loss": "bce"}), data.n_users,
                         data.n_items)
  config = ml_collections.ConfigDict({"seed": 3, "batch_size": 64, "eval_batch_size": 512, "log_every": 3,
                                      "checkpoint_every": 4, "model": {"family": "cf", "name": "mf"}})
  config.stages = [stage_config(name="a", num_epochs=1, eval_every=4, optimizer={"lr": 0.05}),
                   stage_config(name="b", num_epochs=1, eval_every=5, optimizer={"lr": 0.01})]
  score = jax.jit(model.logits)
  evaluate_fn = lambda p: evaluate.evaluate_ctr(lambda b: score(p, b), data.splits["valid"])  # noqa: E731
  workdir = tmp_path_factory.mktemp("outputs") / "w"
  result = train(config, workdir, init_params=model.init(jax.random.PRNGKey(0)),
                 loss_fn=lambda t, f, b, r: model.loss_fn(merge(t, f), b, r), evaluate_fn=evaluate_fn,
                 train_data=ArrayBatcher(evaluate.split_arrays(data.splits["train"]), 64, seed=3), progress=False)
  return workdir, config, result, {"valid": evaluate_fn(result.params)}


def test_tensorboard_events_equal_metrics_jsonl(run):
  workdir = run[0]
  expected = {}
  for r in map(json.loads, (workdir / "metrics.jsonl").read_text().splitlines()):
    group = "train" if r["event"] == "train" else "valid"
    for k, v in r.items():
      if k not in ("event", "stage", "step") and isinstance(v, (int, float)) and not isinstance(v, bool):
        expected[(f"{r['stage']}/{group}/{k}", r["step"])] = float(v)
  events = EventAccumulator(str(workdir / "tb"), size_guidance={"scalars": 0})
  events.Reload()
  got = {(tag, e.step): e.value for tag in events.Tags()["scalars"] for e in events.Scalars(tag)}
  assert set(got) == set(expected)
  for key, value in expected.items():  # events store float32
    assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-30), key
  tags = {t for t, _ in got}
  assert {"a/train/loss", "a/train/lr", "a/train/examples_per_s", "a/train/step_time_s", "a/train/grad_norm",
          "a/valid/auc", "b/valid/uauc"} <= tags


def test_pictures_are_valid_pngs_of_fixed_size_and_deterministic(run, tmp_path):
  workdir, config, result, finals = run
  lines = results.pictures(workdir, config, finals, result.stages)
  assert "![training curves: loss and validation metric against step](training_curves.png)" in lines
  assert _png_size(workdir / "training_curves.png") == (900, 600)  # two stages: two rows of 9 x 3 in at 100 dpi
  assert _png_size(workdir / "warm_cold_valid.png") == (900, 350)
  first = (workdir / "training_curves.png").read_bytes()
  results.pictures(workdir, config, finals, result.stages)
  assert (workdir / "training_curves.png").read_bytes() == first
  topk = {f"{m}@{k}": 0.1 * k / 20 for m in ("precision", "recall", "ndcg") for k in (5, 10, 20)}
  path = plots.topk_curves(topk, [5, 10, 20], "valid", tmp_path / "topk.png")
  assert _png_size(path) == (500, 350)
