"""Is bf16 scoring exact enough? A trained LLM-recommender run's split scored in float32 and in bfloat16 (float32
accumulation, float32 head), AUC / UAUC of both with their bootstrap intervals, the largest |ΔP(Yes)| and rows/s.

  python benchmarks/scoring_precision.py --workdir=workdirs/collm_ml1m --split=valid

The same rows and batching through the run's own scoring path (`llm_task.Runner.scores` with `config.eval_dtype`
set to each); only the backbone's compute dtype (and its weights' storage) differ. The criterion of issue #13: |AUC(bf16) − AUC(f32)| ≤ 0.002 on the full split.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--split", default="valid")
  p.add_argument("--output", default="")
  args = p.parse_args()

  import numpy as np

  from jaxrec import evaluate as ev
  from jaxrec.train import llm_task, loop, workdir as run_dir

  out = {}
  for name in ("float32", "bfloat16"):  # the run's own scoring path (`config.eval_dtype`), once per dtype
    config = run_dir.read_config(args.workdir)
    config.data.max_eval_rows = -1  # the whole split, whatever sample the run validated on
    config.eval_dtype = name
    runner = llm_task.Runner(config, progress=True)
    params = loop.restore_params(config, args.workdir, runner.params)
    table = runner.table(args.split)
    split = table.split
    if not out:
      print(f"{args.workdir} on {args.split} ({len(split.user)} rows), {config.model.keep_layers} layers; "
            f"{_common.machine()}")
    t0 = time.perf_counter()
    scores = runner.scores(params, table)
    seconds = time.perf_counter() - t0
    m = ev.ctr_metrics(split.user, split.label, scores, getattr(split, "warm", None), intervals=True)
    out[name] = dict(seconds=seconds, rows_per_s=len(scores) / seconds, scores=scores,
                     **{k: m[k] for k in ("auc", "uauc", "auc_ci", "uauc_ci")})
  a, b = out["float32"], out["bfloat16"]
  for name, r in out.items():
    print(f"{name:>9}: AUC {r['auc']:.4f} [{r['auc_ci'][0]:.4f}, {r['auc_ci'][1]:.4f}]  UAUC {r['uauc']:.4f} "
          f"[{r['uauc_ci'][0]:.4f}, {r['uauc_ci'][1]:.4f}]  {r['rows_per_s']:.1f} rows/s (first pass, compiles "
          f"included)")
  diff = float(np.max(np.abs(a["scores"] - b["scores"])))
  print(f"|ΔAUC| = {abs(a['auc'] - b['auc']):.4f}, |ΔUAUC| = {abs(a['uauc'] - b['uauc']):.4f}, "
        f"max |ΔP(Yes)| = {diff:.4f}; criterion |ΔAUC| ≤ 0.002: "
        f"{'met' if abs(a['auc'] - b['auc']) <= 0.002 else 'missed'}")
  if args.output:
    for r in out.values():
      r.pop("scores")
    with open(args.output, "w") as f:
      json.dump({"machine": _common.machine(), "workdir": args.workdir, "split": args.split, **out,
                 "max_abs_dp": diff}, f, indent=1)


if __name__ == "__main__":
  main()
