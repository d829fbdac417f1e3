"""End-to-end `:tiny` runs of the LLM-recommender configs (random 2-layer LLM, real data, both stages, resume)."""

import importlib.util
import json
import pathlib

import jax
import numpy as np
import pytest

from jaxrec.train import llm_task, loop

REPO = pathlib.Path(__file__).resolve().parents[1]


def _config(name, arg="tiny"):
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", REPO / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


class _KillAt:
  """Wraps a stage's training data and raises KeyboardInterrupt (as a kill would) before global step `at`."""

  def __init__(self, data, at):
    self.data, self.at, self.steps_per_epoch = data, at, data.steps_per_epoch

  def batches(self, epoch, start=0):
    for i, b in enumerate(self.data.batches(epoch, start)):
      if epoch * self.steps_per_epoch + start + i == self.at:
        raise KeyboardInterrupt
      yield b


def test_collm_ml1m_two_stages_kill_resume_and_outputs(shared_data, tmp_path, monkeypatch):
  def config():
    c = _config("ml1m")
    c.data.root = str(shared_data)
    return c

  full = llm_task.train(config(), tmp_path / "full", progress=False)

  # Kill in the middle of the second stage (LoRA), then resume with the same command.
  original = llm_task.Runner.stage_inputs

  def killing(self, stage):
    data, evaluate_fn = original(self, stage)
    return (_KillAt(data, at=3) if stage.name == "lora" else data), evaluate_fn

  monkeypatch.setattr(llm_task.Runner, "stage_inputs", killing)
  with pytest.raises(KeyboardInterrupt):
    llm_task.train(config(), tmp_path / "killed", progress=False)
  assert (tmp_path / "killed/checkpoints/fece/done.json").exists()
  assert not (tmp_path / "killed/checkpoints/lora/done.json").exists()
  monkeypatch.setattr(llm_task.Runner, "stage_inputs", original)
  resumed = llm_task.train(config(), tmp_path / "killed", progress=False)
  for split in full:
    for key in ("auc", "uauc", "gauc"):
      np.testing.assert_equal(resumed[split][key], full[split][key])

  w = tmp_path / "full"
  for f in ("config.json", "metrics.jsonl", "metrics.json", "results.md", "adapter/adapter_config.json",
            "adapter/adapter_model.safetensors", "embeddings/item.npy", "embeddings/item_llm.npy", "cf/metrics.json"):
    assert (w / f).is_file(), f
  records = [json.loads(l) for l in (w / "metrics.jsonl").read_text().splitlines()]
  trains = [r for r in records if r["event"] == "train"]
  assert {r["stage"] for r in trains} == {"fece", "lora"}
  assert all(k in trains[0] for k in ("step", "loss", "lr", "examples_per_s"))
  assert f"| valid_small | overall | {full['valid_small']['auc']:.4f} |" in (w / "results.md").read_text()
  items = np.load(w / "embeddings/item_llm.npy")
  assert items.shape[1] == 32 and np.abs(items[1:]).sum() > 0  # mapped into the (tiny) LLM's width

  # evaluate.py on the same split agrees with the run's own final numbers
  again = llm_task.evaluate(w, "valid_small")
  assert again["valid_small"]["auc"] == pytest.approx(full["valid_small"]["auc"], abs=1e-6)

  # the trained run serves as the re-ranking scorer of issue #6, with the same P(Yes) as its own evaluation
  from jaxrec.index.llm_scorer import make_llm_scorer

  runner = llm_task.Runner(llm_task.cf_task.read_config(w))
  scorer = make_llm_scorer(str(w), runner.dataset.item_text)
  table = runner.table("valid_small")
  params = loop.restore_params(llm_task.cf_task.read_config(w), w, runner.params)
  want = llm_task.score_table(runner.score_fn, params, table, 8, runner.mesh)[:5]
  sp = table.split
  got = scorer({"user": sp.user[:5], "item": sp.item[:5], "history": sp.history[:5],
                "history_label": sp.history_label[:5]})
  np.testing.assert_allclose(got, want, atol=1e-5)

  # frozen subtrees are bit-identical after both stages; the trained ones moved
  final = params
  for name in ("llm", "cf"):
    for a, b in zip(jax.tree.leaves(final[name]), jax.tree.leaves(runner.params[name])):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  for name in ("fece", "lora"):
    assert any(np.abs(np.asarray(a) - np.asarray(b)).max() > 0
               for a, b in zip(jax.tree.leaves(final[name]), jax.tree.leaves(runner.params[name])))


@pytest.mark.parametrize("name,arg", [("bookcrossing", "tiny,collm_order")])
def test_other_configs_run_end_to_end(shared_data, tmp_path, name, arg):
  config = _config(name, arg)
  config.data.root = str(shared_data)
  out = llm_task.train(config, tmp_path / "w", progress=False)
  assert 0.0 <= out["valid"]["auc"] <= 1.0
  stages = json.loads((tmp_path / "w/metrics.json").read_text())["stages"]
  assert [s["name"] for s in stages] == [s.name for s in config.stages]
  if "collm_order" in arg:  # CoLLM's order: LoRA on the text-only prompt first, then the mapper
    assert [s.name for s in config.stages] == ["lora", "fece"] and config.stages[0].template == "tallrec_book"


def test_tiny_configs_of_every_dataset_build(shared_data):
  for name in ("ml100k", "ml1m", "ml1m_collm_order", "bookcrossing", "amazon_book", "tallrec_ml1m",
               "tallrec_bookcrossing", "tallrec_ml100k"):
    for arg in ("tiny", "tiny,collm_order", None):
      config = _config(name, arg)
      if config.model.cf.name == "none" and arg and "collm_order" in arg:
        continue
      llm_task.validate(config)
      assert len(config.stages) == (1 if config.model.cf.name == "none" else 2)
