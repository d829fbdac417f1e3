"""`configs/ml100k_multiscale.py:tiny` end to end: trains, evaluates, writes results.md / metrics / item vectors, and
`evaluate` on the finished workdir reproduces the final validation figures."""

import importlib.util
import json

import numpy as np
import pytest

from conftest import REPO
from jaxrec.data import schema
from jaxrec.train import multiscale_data, task


def load_config(name: str, arg: str):
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", REPO / "configs" / name)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.__doc__.startswith(f"python launch/train.py --config=configs/{name}")
  return module.get_config(arg)


@pytest.mark.slow
def test_tiny_run_trains_evaluates_and_writes_results(tmp_path):
  config = load_config("ml100k_multiscale.py", "tiny")
  workdir = tmp_path / "run"
  results = task.train(config, workdir, progress=False)
  valid = results["valid"]
  assert valid["n_users"] == 8 and 0 < valid["coverage@10"] <= valid["coverage@20"] <= 1
  assert 0 < valid["ndcg_se@10"] < 0.5  # NDCG's standard error over the 8 users
  text = (workdir / "results.md").read_text()
  assert "| multi-scale (valid) |" in text and "precision@10" in text
  assert f"{valid['ndcg@10']:.4f} ± {valid['ndcg_se@10']:.4f}" in text
  assert "not say which K" in text  # the paper's K is flagged
  assert "(training_curves.png)" in text and "(topk_valid.png)" in text and (workdir / "topk_valid.png").is_file()
  items = np.load(workdir / "embeddings" / "item.npy")
  assert items.shape == (1683, 16) and not items[0].any()
  np.testing.assert_allclose(np.linalg.norm(items[1:], axis=-1), 1.0, rtol=1e-4)
  events = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert {e["event"] for e in events} == {"train", "eval"}
  assert all(np.isfinite(e["loss"]) and "align_loss" in e for e in events if e["event"] == "train")
  again = task.evaluate(workdir, "valid", progress=False)["valid"]
  for key in ("precision@10", "recall@20", "ndcg@10", "coverage@20"):
    assert again[key] == pytest.approx(valid[key], abs=1e-6)
  # benchmarks/multiscale_prior.py: at the trained γ it reproduces the run's own figures; γ changes the ranking.
  from benchmarks import multiscale_prior
  swept = multiscale_prior.sweep(str(workdir), [0.0, float(config.model.pop_prior)], None, "valid")["rows"]
  for key in ("ndcg@10", "precision@10", "coverage@10"):
    assert swept[1][key] == pytest.approx(valid[key], abs=1e-6)
  assert swept[0]["coverage@10"] != swept[1]["coverage@10"]
  # results.md rewritten beside a CF run finished later (here a stand-in metrics.json), nothing retrained.
  cf = tmp_path / "mf"
  cf.mkdir()
  (cf / "metrics.json").write_text(json.dumps({"splits": {"valid": {"precision@10": 0.25, "ndcg@10": 0.5}}}))
  before = (workdir / "metrics.json").read_text()
  text = task.report(workdir, {"MF (BPR)": str(cf), "LightGCN": str(tmp_path / "none")}).read_text()
  assert "| MF (BPR) (valid) | 0.2500 | - | 0.5000 |" in text and f"no valid metrics at {tmp_path / 'none'}" in text
  assert f"{valid['ndcg@10']:.4f} ± {valid['ndcg_se@10']:.4f}" in text and "Preprints.org 202512.1413" in text
  assert (workdir / "metrics.json").read_text() == before
  from jaxrec.errors import JaxrecError
  with pytest.raises(JaxrecError, match=r"mf/config.json: missing"):
    task.report(cf)
  (cf / "config.json").write_text((workdir / "config.json").read_text())
  (cf / "metrics.json").unlink()
  with pytest.raises(JaxrecError, match=r"mf/metrics.json: expected the metrics.json of a finished run"):
    task.report(cf)


def test_config_args_and_errors():
  from jaxrec.errors import JaxrecError
  assert load_config("ml100k_multiscale.py", "tiny,single").model.scales.num == 1
  assert load_config("ml100k_multiscale.py", "lam0").model.align.lam == 0.0
  assert load_config("ml100k_multiscale.py", "").model.keep_layers == 3
  # ':long': every user, 6 rows each, validated every 500 steps (the learning curve); ':tiny' still wins in tests
  long = load_config("ml1m_multiscale.py", "long")
  assert (long.budget.train_users, long.budget.eval_users, long.budget.rows_per_user) == (-1, -1, 6)
  assert (long.stages[0].eval_every, long.stages[0].num_epochs) == (500, 1)
  assert load_config("ml1m_multiscale.py", "tiny,long").budget.train_users == 8
  # results.md's CF rows: the documented baseline workdirs, none for ':tiny' runs
  assert load_config("ml1m_multiscale.py", "lam0").report.baselines["LightGCN"] == "workdirs/cf1m_u300/lightgcn"
  assert not load_config("ml1m_multiscale.py", "tiny").report.baselines
  nocenter = load_config("ml100k_multiscale.py", "nocenter").model
  assert not nocenter.center and nocenter.pop_prior == 0.0
  # The CF baselines beside it: the same top-K protocol through the 'topk' token.
  mf = load_config("baselines/mf.py", "ml100k,topk")
  assert (mf.eval.kind, mf.model.loss, mf.stages[0].early_stopping.metric) == ("topk", "softmax", "ndcg@10")
  assert mf.model.n_negatives == -1  # softmax over the whole catalogue
  with pytest.raises(JaxrecError, match="unknown token 'bogus'"):
    load_config("ml100k_multiscale.py", "bogus")


def test_cf_baseline_evaluates_on_the_users_the_multiscale_run_samples(shared_data):
  """`--config.eval.users=n` on a CF top-K baseline = `budget.eval_users=n` of a multi-scale run, same seed, so
  results.md compares them on the same users; training-item masks still come from the whole train split."""
  from jaxrec import evaluate as ev
  from jaxrec.errors import JaxrecError
  from jaxrec.train import cf_task
  ms = load_config("ml100k_multiscale.py", "")
  ms.data.root, ms.budget.eval_users = str(shared_data), 50
  mf = load_config("baselines/mf.py", "ml100k,topk")
  mf.data.root, mf.eval.users = str(shared_data), 50
  ms_valid = multiscale_data.load_data(ms).splits["valid"]
  full, (sampled, _, _) = cf_task.load_data(mf.data), cf_task.build_model(mf)
  cf_valid = sampled.splits["valid"]
  users = np.unique(cf_valid.user[cf_valid.label > 0.5])
  assert len(users) == 50 and set(users) == set(np.unique(ms_valid.user[ms_valid.label > 0.5]))
  every = full.splits["valid"]
  assert len(cf_valid) == np.isin(every.user, users).sum()  # all of a chosen user's rows, nobody else's
  masked = schema.seen_items(sampled)
  assert sum(map(len, masked.values())) == (full.splits["train"].label > 0.5).sum()
  positive = np.unique(every.user[every.label > 0.5])
  everyone = ev.sample_eval_users(every, -1, 0)  # all users with a positive row (what ml100k_multiscale evaluates)
  assert set(everyone.user) == set(positive) and len(positive) < len(np.unique(every.user))
  assert len(everyone) == np.isin(every.user, positive).sum()
  mf.eval.users = 0
  with pytest.raises(JaxrecError, match="config.eval.users: expected -1"):
    cf_task.validate(mf)


def test_results_md_columns_follow_config_eval_ks(tmp_path):
  """results.md shows P / R / NDCG / Coverage at the Ks the run evaluated (config.eval.ks), not a fixed 10 / 20."""
  from jaxrec.train.multiscale_report import write_results

  config = load_config("ml100k_multiscale.py", "tiny")
  config.eval.ks = (5, 50)
  metrics = {f"{m}@{k}": 0.1 for m in ("precision", "recall", "ndcg", "coverage", "ndcg_se") for k in (5, 50)}
  write_results(tmp_path / "results.md", config, {"valid": metrics}, {"scales": 3})
  header = next(line for line in (tmp_path / "results.md").read_text().splitlines() if line.startswith("| run |"))
  assert header == ("| run | precision@5 | recall@5 | ndcg@5 | coverage@5 | precision@50 | recall@50 | ndcg@50 | "
                    "coverage@50 |")
