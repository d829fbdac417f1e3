"""`launch/sweep.py` on `configs/ml100k_multiscale.py:tiny`: one run per value, then the CSV, PNG and table."""

import csv
import importlib.util

import pytest

from conftest import REPO
from jaxrec.train import multiscale_task
from test_multiscale_e2e import load_config


def test_tiny_lr_sweep_writes_plot_and_csv(tmp_path, monkeypatch):
  spec = importlib.util.spec_from_file_location("launch_sweep", REPO / "launch" / "sweep.py")
  sweep = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(sweep)
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
  monkeypatch.setattr(multiscale_task, "train", lambda *a, **k: pytest.fail("a finished run was run again"))
  assert sweep.run_sweep(config, tmp_path, "lr", ["1e-2"]) == rows[1:]
