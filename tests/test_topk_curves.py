"""benchmarks/topk_curves.py: a run's validation curve read from its metrics.jsonl (hand-written logs)."""

import json

import pytest

from benchmarks import topk_curves
from jaxrec.errors import JaxrecError
from test_multiscale_e2e import load_config


def _write_run(workdir, records, arg="tiny,mf_first"):
  workdir.mkdir()
  (workdir / "config.json").write_text(load_config("ml1m_multiscale_cf.py", arg).to_json_best_effort())
  (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _eval(stage, step, epoch, ndcg, cov):
  return {"event": "eval", "stage": stage, "step": step, "epoch": epoch, "ndcg@10": ndcg, "coverage@10": cov,
          "ndcg_se@10": 0.01}


def test_curve_orders_steps_keeps_the_last_record_and_counts_epochs_across_stages(tmp_path):
  run = tmp_path / "run"
  _write_run(run, [
      {"event": "train", "stage": "ids", "step": 5, "epoch": 0.5, "loss": 3.0},  # not an eval: ignored
      _eval("ids", 20, 2.0, 0.20, 0.30),
      _eval("ids", 10, 1.0, 0.10, 0.20),
      _eval("ids", 20, 2.0, 0.21, 0.31),  # a resumed run repeats step 20: the last record wins
      _eval("text", 10, 1.0, 0.25, 0.40),  # the second stage counts its own epochs from 0
      _eval("text", 20, 2.0, 0.24, 0.45)])
  rows = topk_curves.curve(run)
  assert [(r["stage"], r["step"], r["epoch"]) for r in rows] == [
      ("ids", 10, 1.0), ("ids", 20, 2.0), ("text", 10, 3.0), ("text", 20, 4.0)]
  assert [r["ndcg"] for r in rows] == [0.10, 0.21, 0.25, 0.24]
  s = topk_curves.summary(rows)
  assert (s["best"]["epoch"], s["best"]["coverage"], s["last"]["coverage"]) == (3.0, 0.40, 0.45)


def test_curve_refuses_a_run_without_the_cut_off(tmp_path):
  run = tmp_path / "ctr"
  _write_run(run, [{"event": "eval", "stage": "ids", "step": 10, "epoch": 1.0, "auc": 0.7}])
  with pytest.raises(JaxrecError, match=r"metrics.jsonl: stage 'ids' step 10 has no ndcg@10"):
    topk_curves.curve(run)
  with pytest.raises(JaxrecError, match=r"nowhere/metrics\.jsonl: missing"):
    topk_curves.curve(tmp_path / "nowhere")


def test_importing_the_tool_defines_no_global_flags_and_main_writes_its_outputs(tmp_path):
  from absl import flags
  assert "k" not in flags.FLAGS  # launch/ scripts imported in the same test process define --workdir too
  run = tmp_path / "run"
  _write_run(run, [_eval("ids", 10, 1.0, 0.10, 0.20), _eval("ids", 20, 2.0, 0.21, 0.31)])
  topk_curves.main(["topk_curves.py", f"--workdir={run}", f"--out={tmp_path / 'c'}"])
  lines = (tmp_path / "c.md").read_text().splitlines()
  assert "| run | 2 | 2 | 0.2100 ± 0.0100 | 0.3100 | 0.2100 | 0.3100 |" in lines
  assert (tmp_path / "c.csv").read_text().splitlines()[1] == "run,ids,10,1.0,0.1,0.2,0.01"
  assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
