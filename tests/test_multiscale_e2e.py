"""`configs/ml100k_multiscale.py:tiny` end to end: trains, evaluates, writes results.md / metrics / item vectors, and
`evaluate` on the finished workdir reproduces the final validation figures."""

import importlib.util
import json

import numpy as np
import pytest

from conftest import REPO
from jaxrec.train import multiscale_task


def load_config(name: str, arg: str):
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", REPO / "configs" / name)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.__doc__.startswith(f"python launch/train.py --config=configs/{name}")
  return module.get_config(arg)


def test_tiny_run_trains_evaluates_and_writes_results(tmp_path):
  config = load_config("ml100k_multiscale.py", "tiny")
  workdir = tmp_path / "run"
  results = multiscale_task.train(config, workdir, progress=False)
  valid = results["valid"]
  assert valid["n_users"] == 8 and 0 < valid["coverage@10"] <= valid["coverage@20"] <= 1
  text = (workdir / "results.md").read_text()
  assert "| multi-scale (valid) |" in text and "precision@10" in text
  assert "not say which K" in text  # the paper's K is flagged
  items = np.load(workdir / "embeddings" / "item.npy")
  assert items.shape == (1683, 16) and not items[0].any()
  np.testing.assert_allclose(np.linalg.norm(items[1:], axis=-1), 1.0, rtol=1e-4)
  events = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert {e["event"] for e in events} == {"train", "eval"}
  assert all(np.isfinite(e["loss"]) and "align_loss" in e for e in events if e["event"] == "train")
  again = multiscale_task.evaluate(workdir, "valid")["valid"]
  for key in ("precision@10", "recall@20", "ndcg@10", "coverage@20"):
    assert again[key] == pytest.approx(valid[key], abs=1e-6)


def test_config_args_and_errors():
  from jaxrec.errors import JaxrecError
  assert load_config("ml100k_multiscale.py", "tiny,single").model.scales.num == 1
  assert load_config("ml100k_multiscale.py", "lam0").model.align.lam == 0.0
  assert load_config("ml100k_multiscale.py", "").model.keep_layers == 3
  nocenter = load_config("ml100k_multiscale.py", "nocenter").model
  assert not nocenter.center and nocenter.pop_prior == 0.0
  # The CF baselines beside it: the same top-K protocol through the 'topk' token.
  mf = load_config("baselines/mf.py", "ml100k,topk")
  assert (mf.eval.kind, mf.model.loss, mf.stages[0].early_stopping.metric) == ("topk", "bpr", "ndcg@10")
  with pytest.raises(JaxrecError, match="unknown token 'bogus'"):
    load_config("ml100k_multiscale.py", "bogus")
