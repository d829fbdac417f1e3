"""Learning curves of top-K runs side by side: validation NDCG@K and Coverage@K against epochs trained.

  python benchmarks/topk_curves.py --workdir=W/lightgcn --workdir=W/sweep_lr/lr_1e-2 --k=10 \
      --out=benchmarks/results/multiscale/curves_gcn_ml1m

Issue #14 asks, where a model falls short of a baseline, for its learning curve beside the baseline's, so the trend
is visible. Each run's `metrics.jsonl` already holds the validation figures the life cycle computed after every epoch
(all users, the runs' own protocol); this tool only reads them (nothing is evaluated again): for each run and each
stage, the eval records in step order, the last one per step winning (a resumed run repeats records), with the
epoch as the x axis (stages after the first continue the count). Writes `<out>.csv` (run, stage, step, epoch,
ndcg@K, coverage@K, ndcg_se@K), `<out>.md` (each run's best epoch and last epoch) and `<out>.png`.
"""

from __future__ import annotations

import csv
import os
import pathlib
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def curve(workdir, k: int = 10) -> list[dict]:
  """The run's validation records in training order: [{'run', 'stage', 'step', 'epoch', 'ndcg', 'coverage',
  'ndcg_se'}]; 'epoch' counts on across stages."""
  from jaxrec.errors import JaxrecError
  from jaxrec.train import workdir as run_dir
  from jaxrec.train.plots import read_log

  workdir = pathlib.Path(workdir)
  log_path = workdir / "metrics.jsonl"
  if not log_path.is_file():
    raise JaxrecError(f"{log_path}: missing; expected the workdir of a launch/train.py top-K run")
  config = run_dir.read_config(workdir)
  log, rows, offset = read_log(log_path), [], 0.0
  for stage in config.stages:
    evals = sorted(log.get((stage.name, "eval"), {}).items())
    for step, r in evals:
      if f"ndcg@{k}" not in r:
        raise JaxrecError(f"{log_path}: stage {stage.name!r} step {step} has no ndcg@{k}; expected a top-K run "
                          f"evaluated at K = {k}")
      rows.append({"run": workdir.name, "stage": stage.name, "step": step, "epoch": offset + float(r["epoch"]),
                   "ndcg": float(r[f"ndcg@{k}"]), "coverage": float(r[f"coverage@{k}"]),
                   "ndcg_se": float(r.get(f"ndcg_se@{k}", float("nan")))})
    if evals:
      offset = rows[-1]["epoch"]
  return rows


def summary(rows: list[dict]) -> dict:
  """The best (highest NDCG) and the last record of one run's curve."""
  best = max(rows, key=lambda r: r["ndcg"])
  return {"best": best, "last": rows[-1]}


def main(argv: list[str]) -> None:
  # flags on a private FlagValues: importing this module (tests) defines nothing in absl's global flags
  fv = flags.FlagValues()
  workdirs = flags.DEFINE_multi_string("workdir", [], "a top-K run (finished or not) with metrics.jsonl",
                                       flag_values=fv)
  k_flag = flags.DEFINE_integer("k", 10, "the cut-off whose NDCG and Coverage are plotted", flag_values=fv)
  out_flag = flags.DEFINE_string("out", None, "output path without suffix (.csv, .md and .png are written)",
                                 flag_values=fv)
  flags.mark_flag_as_required("out", flag_values=fv)
  fv(argv)
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from benchmarks._common import machine

  k, out = k_flag.value, pathlib.Path(out_flag.value)
  curves = {w: curve(w, k) for w in workdirs.value}
  with open(out.with_suffix(".csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["run", "stage", "step", "epoch", "ndcg", "coverage", "ndcg_se"])
    writer.writeheader()
    for rows in curves.values():
      writer.writerows(rows)
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  lines = [f"# Validation NDCG@{k} and Coverage@{k} against epochs", "",
           f"`python benchmarks/topk_curves.py {' '.join(f'--workdir={w}' for w in curves)} --k={k} --out={out}`; "
           f"read from each run's metrics.jsonl ({machine()} only ran this reader).", "",
           f"| run | epochs | best epoch | best NDCG@{k} ± se | its Coverage@{k} | last NDCG@{k} | last Coverage@{k} |",
           "|---|---|---|---|---|---|---|"]
  for w, rows in curves.items():
    name = pathlib.Path(w).name
    if not rows:
      lines.append(f"| {name} | 0 | – | – | – | – | – |")
      continue
    axes[0].plot([r["epoch"] for r in rows], [r["ndcg"] for r in rows], marker=".", label=name)
    axes[1].plot([r["epoch"] for r in rows], [r["coverage"] for r in rows], marker=".", label=name)
    s = summary(rows)
    b, last = s["best"], s["last"]
    lines.append(f"| {name} | {last['epoch']:.0f} | {b['epoch']:.0f} | {b['ndcg']:.4f} ± {b['ndcg_se']:.4f} | "
                 f"{b['coverage']:.4f} | {last['ndcg']:.4f} | {last['coverage']:.4f} |")
  for ax, metric in zip(axes, ("NDCG", "Coverage")):
    ax.set(xlabel="epoch", ylabel=f"{metric}@{k} (valid)", title=f"{metric}@{k}")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out.with_suffix(".png"), dpi=100)
  lines += ["", f"![curves]({out.name}.png)"]
  out.with_suffix(".md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main(sys.argv)
