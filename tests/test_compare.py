"""launch/compare.py: top-K runs compared on the same users, paired differences with bootstrap intervals."""

import pathlib
import subprocess
import sys

import pytest

from jaxrec import evaluate as ev, metrics as M
from jaxrec.config_util import sibling_config
from jaxrec.train import task

REPO = pathlib.Path(__file__).resolve().parents[1]


def _train(root, names, arg):
  for name in names:
    task.train(sibling_config(str(REPO / "configs" / "x.py"), f"baselines/{name}.py", arg), root / name,
               progress=False)
  return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  return _train(tmp_path_factory.mktemp("compare"), ("ease", "pop"), "synthetic,tiny,topk")


def test_paired_differences_and_intervals(runs):
  from launch import compare

  rows, table = compare.compare([runs / "ease", runs / "pop"], "valid", ["EASE", "Pop"], ["ndcg@10"])
  a, b = (ev.read_arrays(runs / n / "per_user" / "valid.npz") for n in ("ease", "pop"))
  assert (a["user"] == b["user"]).all() and rows[1]["users"] == len(a["user"])
  diff = b["ndcg@10"] - a["ndcg@10"]
  assert rows[1]["ndcg@10 diff"] == pytest.approx(diff.mean(), abs=1e-12)
  assert rows[1]["ndcg@10 diff ci"] == pytest.approx(M.bootstrap_ci(diff), abs=1e-12)
  assert rows[0]["ndcg@10"] == pytest.approx(ev.read_arrays(runs / "ease" / "per_user" / "valid.npz")["ndcg@10"]
                                             .mean())
  # the per-user terms average to the run's own metrics.json figure
  import json
  assert rows[0]["ndcg@10"] == pytest.approx(json.loads((runs / "ease" / "metrics.json").read_text())
                                             ["splits"]["valid"]["ndcg@10"], abs=1e-12)
  assert "| Pop |" in table and f"{rows[1]['ndcg@10 diff']:+.4f}" in table


def test_one_line_errors(runs, tmp_path):
  def refuse(*args, expect):
    r = subprocess.run([sys.executable, str(REPO / "launch" / "compare.py"), *args], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and expect in r.stderr, r.stderr

  refuse(f"--workdir={runs / 'ease'}", expect="give at least two finished runs")
  refuse(f"--workdir={runs / 'ease'}", f"--workdir={tmp_path}", expect="no per-user or per-row results for split 'valid'")
  refuse(f"--workdir={runs / 'ease'}", f"--workdir={runs / 'pop'}", "--metrics=ndcg@7",
         expect="no per-user 'ndcg@7'")


@pytest.fixture(scope="module")
def ctr_runs(tmp_path_factory):
  return _train(tmp_path_factory.mktemp("compare_ctr"), ("mf", "ease"), "synthetic,tiny")


def test_ctr_runs_paired_on_identical_rows(ctr_runs, tmp_path):
  """CTR runs: every row's score is saved (per_row/), the comparison matches rows by (user, item) whatever their
  order in the file, and its differences and intervals are `metrics.paired_ctr_differences` of the two runs."""
  import json
  import shutil

  import numpy as np

  from launch import compare

  a, b = (ev.read_arrays(ctr_runs / n / "per_row" / "valid.npz") for n in ("mf", "ease"))
  record = json.loads((ctr_runs / "mf" / "metrics.json").read_text())["splits"]["valid"]
  assert len(a["score"]) == record["n"] and M.auc(a["label"], a["score"]) == pytest.approx(record["auc"], abs=1e-12)
  # a copy of the EASE run whose rows are stored in another order
  shuffled = tmp_path / "shuffled"
  shutil.copytree(ctr_runs / "ease", shuffled)
  order = np.random.default_rng(0).permutation(len(b["score"]))
  ev.write_saved(shuffled, {"per_row": {"valid": {k: v[order] for k, v in b.items()}}})
  want = M.paired_ctr_differences(a["user"], a["label"], a["score"], b["score"])
  for other in (ctr_runs / "ease", shuffled):
    rows, table = compare.compare([ctr_runs / "mf", other], "valid", ["MF", "EASE"])
    assert rows[1]["rows"] == len(a["score"]) and rows[0]["auc"] == pytest.approx(record["auc"], abs=1e-12)
    for m in ("auc", "uauc", "gauc"):
      assert rows[1][f"{m} diff"] == pytest.approx(want[m]["diff"], abs=1e-12)
      assert rows[1][f"{m} diff ci"] == pytest.approx(want[m]["diff_ci"], abs=1e-12)
    assert "| EASE | all |" in table and f"{rows[1]['auc diff']:+.4f}" in table


def test_ctr_and_topk_runs_do_not_mix(runs, ctr_runs):
  r = subprocess.run([sys.executable, str(REPO / "launch" / "compare.py"), f"--workdir={ctr_runs / 'mf'}",
                      f"--workdir={runs / 'ease'}"], capture_output=True, text=True)
  assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not the same kind of run" in r.stderr, r.stderr
