"""The generic training loop: partitioning, pure steps, stages, early stopping, checkpoints and resume."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxrec import cf, evaluate
from jaxrec.cf import synthetic
from jaxrec.errors import JaxrecError
from jaxrec.tree import merge
from jaxrec.train import (ArrayBatcher, make_optimizer, make_train_step, partition, restore_params,
                          stage_config, train)
from jaxrec.train.config import validate_loop_config


@pytest.fixture(scope="module")
def data():
  return synthetic.make_dataset(n_users=60, n_items=40, rows_per_user=20, seed=1)


def _model(data):
  cfg = ml_collections.ConfigDict({"name": "mf", "embed_dim": 8, "loss": "bce"})
  return cf.build_model(cfg, data.n_users, data.n_items)


def _config(*stages, **kw):
  cfg = ml_collections.ConfigDict({"seed": 3, "batch_size": 64, "eval_batch_size": 512, "log_every": 5,
                                   "checkpoint_every": 4})
  cfg.stages = list(stages)
  cfg.update(kw)
  return cfg


def _pieces(data, model):
  def loss_fn(trainable, frozen, batch, rng):
    return model.loss_fn(merge(trainable, frozen), batch, rng)

  score = jax.jit(model.logits)

  def evaluate_fn(params):
    return evaluate.evaluate_ctr(lambda b: score(params, b), data.splits["valid"])

  batcher = ArrayBatcher(evaluate.split_arrays(data.splits["train"]), 64, seed=3)
  return loss_fn, evaluate_fn, batcher


def test_partition_combine_roundtrip_and_rules():
  params = {"params": {"a": {"kernel": jnp.ones((2, 2))}, "b": {"kernel": jnp.zeros(3)}},
            "consts": {"edges": jnp.arange(4)}}
  trainable, frozen = partition(params, [("params/b/.*", "frozen"), ("params/.*", "train")])
  assert jax.tree_util.tree_structure(trainable) == jax.tree_util.tree_structure({"params": {"a": {"kernel": 0}}})
  assert set(frozen) == {"params", "consts"} and set(frozen["params"]) == {"b"}
  back = merge(trainable, frozen)
  assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), back, params))
  with pytest.raises(JaxrecError, match="non-float"):
    partition(params, [(".*", "train")])
  with pytest.raises(JaxrecError, match="no parameter matches"):
    partition(params, [("nothing", "train")])


def test_train_step_updates_only_trainable(data):
  model = _model(data)
  params = model.init(jax.random.PRNGKey(0))
  trainable, frozen = partition(params, [("params/user_embed/.*", "train")])
  frozen_before = jax.tree.map(np.array, frozen)
  opt_cfg = stage_config().optimizer
  optimizer, _ = make_optimizer(opt_cfg, 10)
  step = make_train_step(lambda t, f, b, r: model.loss_fn(merge(t, f), b, r), optimizer)
  batch = next(ArrayBatcher(evaluate.split_arrays(data.splits["train"]), 32, 0).batches(0))
  before = np.array(trainable["params"]["user_embed"]["embedding"])
  new, _, metrics = step(trainable, frozen, optimizer.init(trainable), batch, jax.random.PRNGKey(1))
  assert np.isfinite(float(metrics["loss"])) and float(metrics["grad_norm"]) > 0
  assert not np.array_equal(before, np.asarray(new["params"]["user_embed"]["embedding"]))
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, np.asarray(b)), frozen_before, frozen)


def test_schedule_warmup_then_cosine():
  _, sched = make_optimizer(stage_config(optimizer={"lr": 1.0, "warmup_steps": 10}).optimizer, 110)
  assert float(sched(0)) == 0.0 and float(sched(10)) == pytest.approx(1.0)
  assert float(sched(60)) == pytest.approx(0.5, abs=1e-6) and float(sched(110)) == pytest.approx(0.0, abs=1e-6)


class _Interrupting:
  """Wraps a batcher and raises KeyboardInterrupt (as a kill would stop the run) before global step `at`."""

  def __init__(self, inner, at):
    self.inner, self.at, self.steps_per_epoch = inner, at, inner.steps_per_epoch

  def batches(self, epoch, start=0):
    for i, b in enumerate(self.inner.batches(epoch, start)):
      if epoch * self.steps_per_epoch + start + i == self.at:
        raise KeyboardInterrupt
      yield b


def _evals(workdir):
  return [r for r in map(json.loads, (workdir / "metrics.jsonl").read_text().splitlines()) if r["event"] == "eval"]


def test_resume_after_interruption_matches_uninterrupted(data, tmp_path):
  model = _model(data)
  init = model.init(jax.random.PRNGKey(0))
  stage = stage_config(name="s", num_epochs=3, eval_every=7, optimizer={"lr": 0.05, "warmup_steps": 3})
  config = _config(stage)
  loss_fn, evaluate_fn, batcher = _pieces(data, model)
  assert batcher.steps_per_epoch == 11  # 33 steps; step 19 is mid-epoch, 3 after the last checkpoint (16)

  full = train(config, tmp_path / "full", init_params=init, loss_fn=loss_fn, evaluate_fn=evaluate_fn,
               train_data=batcher, progress=False)
  with pytest.raises(KeyboardInterrupt):
    train(config, tmp_path / "killed", init_params=init, loss_fn=loss_fn, evaluate_fn=evaluate_fn,
          train_data=_Interrupting(batcher, at=19), progress=False)
  assert not (tmp_path / "killed/checkpoints/s/done.json").exists()
  resumed = train(config, tmp_path / "killed", init_params=init, loss_fn=loss_fn, evaluate_fn=evaluate_fn,
                  train_data=batcher, progress=False)

  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), full.params,
               resumed.params)
  assert full.stages == resumed.stages
  by_step = lambda rows: {r["step"]: r["auc"] for r in rows}
  assert by_step(_evals(tmp_path / "full")) == by_step(_evals(tmp_path / "killed"))
  assert full.stages[0]["best_value"] > 0.6  # it learned the planted signal
  # The workdir layout other tools rely on.
  assert (tmp_path / "full/config.json").exists()
  assert sorted(p.name for p in (tmp_path / "full/checkpoints/s").iterdir()) == ["best", "done.json", "latest"]
  restored = restore_params(config, tmp_path / "full", init)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), full.params, restored)


def test_two_stages_freeze_and_carry(data, tmp_path):
  model = _model(data)
  init = model.init(jax.random.PRNGKey(0))
  s1 = stage_config(name="users", trainable=["params/user_embed/.*"], max_steps=6, optimizer={"lr": 0.05})
  s2 = stage_config(name="items", trainable=["params/.*"], frozen=["params/user_embed/.*"], max_steps=6,
                    optimizer={"lr": 0.05}, init_from="previous")
  loss_fn, evaluate_fn, batcher = _pieces(data, model)
  result = train(_config(s1, s2), tmp_path, init_params=init, loss_fn=loss_fn, evaluate_fn=evaluate_fn,
                 train_data=batcher, progress=False)
  p0, p1 = init["params"], result.params["params"]
  users1 = restore_params(_config(s1), tmp_path, init)["params"]["user_embed"]["embedding"]
  np.testing.assert_array_equal(np.asarray(p1["user_embed"]["embedding"]), np.asarray(users1))  # frozen in stage 2
  assert not np.array_equal(np.asarray(users1), np.asarray(p0["user_embed"]["embedding"]))  # trained in stage 1
  assert not np.array_equal(np.asarray(p1["item_embed"]["embedding"]), np.asarray(p0["item_embed"]["embedding"]))
  assert [s["name"] for s in result.stages] == ["users", "items"]


def test_early_stopping_and_metric_checks(data, tmp_path):
  model = _model(data)
  init = model.init(jax.random.PRNGKey(0))
  loss_fn, _, batcher = _pieces(data, model)
  stage = stage_config(name="s", max_steps=30, eval_every=2, early_stopping={"metric": "loss", "mode": "min",
                                                                            "patience": 2})
  result = train(_config(stage), tmp_path / "a", init_params=init, loss_fn=loss_fn,
                 evaluate_fn=lambda p: {"loss": 1.0}, train_data=batcher, progress=False)
  assert result.stages[0]["stopped_early"] and result.stages[0]["steps"] == 6  # evals at 2 (best), 4, 6
  with pytest.raises(JaxrecError, match="early_stopping.metric"):
    train(_config(stage_config(name="s", max_steps=2)), tmp_path / "b", init_params=init, loss_fn=loss_fn,
          evaluate_fn=lambda p: {"loss": 1.0}, train_data=batcher, progress=False)


@pytest.mark.parametrize("bad, match", [
    ({"optimizer": {"lr": -1.0}},
     r"config\.stages\[0\]\.optimizer\.lr: expected a finite learning rate in \(0, 10\], got -1.0"),
    ({"optimizer": {"schedule": "linear"}}, r"optimizer\.schedule"),
    ({"early_stopping": {"mode": "best"}}, r"early_stopping\.mode"),
    ({"init_from": "elsewhere"}, r"init_from"),
    ({"early_stopping": {"patience": 0}}, r"early_stopping\.patience: expected an integer >= 1 .* or < 0"),
    ({"trainable": ["params/(("]}, r"trainable\[0\]"),
])
def test_impossible_stage_values_fail_in_one_line(bad, match):
  stage = stage_config()
  for key, value in bad.items():
    if isinstance(value, dict):
      stage[key].update(value)
    else:
      stage[key] = value
  with pytest.raises(JaxrecError, match=match) as e:
    validate_loop_config(_config(stage))
  assert "\n" not in str(e.value)


def test_unknown_stage_field_fails():
  with pytest.raises(JaxrecError, match="stage.optimizer.learning_rate: unknown field"):
    stage_config(optimizer={"learning_rate": 1e-3})
  stage = stage_config()
  stage.unlock()
  stage.epochs = 3
  with pytest.raises(JaxrecError, match=r"stages\[0\]\.epochs"):
    validate_loop_config(_config(stage))


def test_a_workdir_refuses_a_config_that_trains_differently_but_takes_new_report_labels(tmp_path):
  from jaxrec.train.workdir import write_config
  cfg = ml_collections.ConfigDict({"seed": 0, "model": {"lr": 1e-3}, "report": {"paper_source": "a"}})
  write_config(cfg, tmp_path)
  cfg.report.paper_source = "b"  # output labels only: accepted, and config.json now says "b"
  write_config(cfg, tmp_path)
  assert json.loads((tmp_path / "config.json").read_text())["report"]["paper_source"] == "b"
  cfg.model.lr = 3e-3
  with pytest.raises(JaxrecError, match=r"config.json holds a run with a different config \(config.model.lr"):
    write_config(cfg, tmp_path)
  assert json.loads((tmp_path / "config.json").read_text())["model"]["lr"] == 1e-3
