"""`launch/sweep.py` on `configs/ml100k_multiscale.py:tiny`: one run per value, then the CSV, PNG and table."""

import csv
import functools
import importlib.util

import pytest

from conftest import REPO
from jaxrec.errors import JaxrecError
from jaxrec.train import task
from test_multiscale_e2e import load_config

pytestmark = pytest.mark.slow  # real weights or end-to-end runs: `pytest -m 'not slow'` leaves them out


@functools.cache
def _sweep_module():
  """launch/sweep.py, loaded once (its absl flags can be defined only once per process)."""
  spec = importlib.util.spec_from_file_location("launch_sweep", REPO / "launch" / "sweep.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_tiny_lr_sweep_writes_plot_and_csv(tmp_path, monkeypatch):
  sweep = _sweep_module()
  config = load_config("ml100k_multiscale.py", "tiny")
  rows = sweep.run_sweep(config, tmp_path, "lr", ["1e-3", "1e-2"])
  assert [r["lr"] for r in rows] == ["1e-3", "1e-2"]
  with open(tmp_path / "lr.csv") as f:
    table = list(csv.DictReader(f))
  assert [t["lr"] for t in table] == ["1e-3", "1e-2"] and {"precision@10", "precision@20", "coverage@10"} <= set(table[0])
  assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert (tmp_path / "lr.md").read_text().startswith("| lr |")
  assert (tmp_path / "lr_1e-2" / "results.md").is_file()
  # A sweep point that is already a finished run of the same config (the default lr in the ablations, say) is read
  # back, neither trained nor evaluated again.
  monkeypatch.setattr(task, "train", lambda *a, **k: pytest.fail("a finished run was run again"))
  assert sweep.run_sweep(config, tmp_path, "lr", ["1e-2"]) == rows[1:]
  config.report.paper_source = "another label"  # report fields only label results.md: still the same run
  assert sweep.run_sweep(config, tmp_path, "lr", ["1e-2"]) == rows[1:]
  config.model.loss.beta = 0.5  # a training field: trained again
  with pytest.raises(pytest.fail.Exception, match="run again"):
    sweep.run_sweep(config, tmp_path, "lr", ["1e-2"])


def test_seed_sweep_sets_the_seed_and_ends_its_table_with_mean_and_sd(tmp_path):
  sweep = _sweep_module()
  config = load_config("ml100k_multiscale.py", "tiny,single")
  variant = sweep.variant_config(config, "seed", "2")
  assert (variant.seed, config.seed, variant.model.scales.num) == (2, 0, 1)  # the variant's other fields kept
  rows = [{"seed": "0", "ndcg@10": 0.10, "coverage@10": 0.2}, {"seed": "1", "ndcg@10": 0.14, "coverage@10": 0.2,
           "ndcg_se@10": 0.01}, {"seed": "2", "ndcg@10": 0.12, "coverage@10": 0.5, "ndcg_se@10": 0.03}]
  sweep.write_outputs(rows, tmp_path, "seed", [10])
  lines = (tmp_path / "seed.md").read_text().splitlines()
  assert lines[0] == "| seed | ndcg@10 | coverage@10 | ndcg_se@10 |"
  assert lines[2] == "| 0 | 0.1000 | 0.2000 | nan |"  # a run that did not record it (an older one, read back)
  # sd with ddof=1, by hand; the standard error over the seeds that have it
  assert lines[-2:] == ["| mean | 0.1200 | 0.3000 | 0.0200 |", "| sd | 0.0200 | 0.1732 | 0.0141 |"]
  assert (tmp_path / "seed.png").read_bytes()[:4] == b"\x89PNG"


def test_heads_sweep_sets_the_fusion_heads_of_the_llm_recommender_and_of_the_cf_towers():
  sweep = _sweep_module()
  llm = load_config("ml100k_multiscale.py", "tiny")
  assert sweep.variant_config(llm, "heads", "2").model.fusion.heads == 2
  gcn = load_config("ml1m_multiscale_cf.py", "graph,tiny")
  variant = sweep.variant_config(gcn, "heads", "4")
  assert (variant.model.heads, gcn.model.heads, variant.model.name) == (4, 8, "mscf_gcn")
  with pytest.raises(JaxrecError, match="config.model .*'mf'.* has no cross-scale fusion heads"):
    sweep.variant_config(load_config("baselines/mf.py", "ml1m_topk,topk"), "heads", "4")
