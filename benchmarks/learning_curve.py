"""Learning curves of finished CTR runs: full-split AUC / UAUC (95% bootstrap CIs) against training rows seen, one
line per (method, layers kept). Collects runs that already finished (train them with the configs' budgets, e.g.
`configs/ml1m.py` (1,024 rows), `configs/ml1m.py:long` (8,192), `--config.data.max_train_rows=4096`, ...).

  python benchmarks/learning_curve.py --workdir=W1 --workdir=W2 ... --split=valid \
      --out=benchmarks/results/curves/ml1m_collm
  python benchmarks/learning_curve.py --points=benchmarks/results/curves/ml1m.csv --workdir=W3 ... \
      --out=benchmarks/results/curves/ml1m   # earlier points (a CSV this tool wrote) beside new runs

Per run it reads config.json (method, layers kept, batch size, the train rows cap) and metrics.json (the steps
each stage trained), and the figures of `--split` from `<workdir>/eval/<split>.json` when `launch/evaluate.py`
wrote one, else from metrics.json (whole splits since issue #12; a run whose figures cover fewer rows than the
split is refused, not plotted). Writes `<out>.csv` (one row per run) and `<out>.png`.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_WORKDIRS = flags.DEFINE_multi_string("workdir", [], "a finished CTR run")
_SPLIT = flags.DEFINE_string("split", "valid", "split whose figures are plotted")
_OUT = flags.DEFINE_string("out", None, "output path without suffix (.csv and .png are written)")
_POINTS = flags.DEFINE_multi_string("points", [], "a CSV this tool wrote: its rows are curve points too (runs whose "
                                    "workdirs are gone)")
_MIN_ROWS = flags.DEFINE_integer("min_rows", 1, "refuse runs whose figures cover fewer rows than this")

FIELDS = ("method", "layers", "train_rows", "rows_seen", "steps", "auc", "auc_lo", "auc_hi", "uauc", "uauc_lo",
          "uauc_hi", "n", "cf_auc", "cf_uauc", "workdir")


def run_point(workdir: pathlib.Path, split: str) -> dict:
  """One curve point of a finished run."""
  from jaxrec.errors import JaxrecError
  from jaxrec.train import workdir as run_dir

  config = run_dir.read_config(workdir)
  m = config.model
  method = "TALLRec" if m.cf.name == "none" else f"CoLLM-FaissRet ({m.cf.name.upper()})"
  source = workdir / "eval" / f"{split}.json"
  if not source.is_file():
    source = workdir / "metrics.json"
  try:
    metrics = json.loads(source.read_text())["splits"][split]
  except (OSError, KeyError, ValueError) as e:
    raise JaxrecError(f"{workdir}: no final figures of split {split!r} ({type(e).__name__}: {e})") from None
  stages = json.loads((workdir / "metrics.json").read_text())["stages"]  # each stage's steps trained
  steps = sum(int(st["steps"]) for st in stages)
  rows_seen = steps * int(config.batch_size) // max(1, len(stages))  # rows per stage (every stage sees them)
  vs = metrics.get("vs_cf", {}).get("all", {})
  return {"method": method, "layers": int(m.keep_layers), "train_rows": int(config.data.max_train_rows),
          "rows_seen": rows_seen, "steps": steps, "auc": metrics["auc"], "auc_lo": metrics["auc_ci"][0],
          "auc_hi": metrics["auc_ci"][1], "uauc": metrics["uauc"], "uauc_lo": metrics["uauc_ci"][0],
          "uauc_hi": metrics["uauc_ci"][1], "n": metrics["n"], "cf_auc": vs.get("auc", {}).get("a"),
          "cf_uauc": vs.get("uauc", {}).get("a"), "workdir": str(workdir)}


INT_FIELDS = ("layers", "train_rows", "rows_seen", "steps", "n")


def read_points(path: pathlib.Path) -> list[dict]:
  """The curve points of a CSV written by this tool (numbers parsed; an empty CF figure is None)."""
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  points = []
  for row in rows:
    p = dict(row)
    for k in FIELDS:
      if k in ("method", "workdir"):
        continue
      p[k] = int(p[k]) if k in INT_FIELDS else (float(p[k]) if p[k] not in ("", "None") else None)
    points.append(p)
  return points


def plot(points: list[dict], path: pathlib.Path, split: str) -> None:
  from jaxrec.train import plots

  plt = plots.plt
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
  lines = sorted({(p["method"], p["layers"]) for p in points})
  for ax, metric in zip(axes, ("auc", "uauc")):
    cf_lines = set()  # one dashed line (and legend entry) per CF figure, however many curves share it
    for method, layers in lines:
      pts = sorted((p for p in points if (p["method"], p["layers"]) == (method, layers)), key=lambda p: p["rows_seen"])
      x = [p["rows_seen"] for p in pts]
      y = [p[metric] for p in pts]
      err = [[p[metric] - p[f"{metric}_lo"] for p in pts], [p[f"{metric}_hi"] - p[metric] for p in pts]]
      line = ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"{method}, {layers} layers")
      cf = [p[f"cf_{metric}"] for p in pts if p[f"cf_{metric}"] is not None]
      if cf and round(cf[0], 6) not in cf_lines:
        cf_lines.add(round(cf[0], 6))
        name = method[method.find("(") + 1:-1] if "(" in method else "CF"  # "CoLLM-FaissRet (MF)" -> MF
        ax.axhline(cf[0], color=line[0].get_color(), linestyle="--", linewidth=1,
                   label=f"{name} alone, same rows" if metric == "auc" else None)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training rows seen per stage")
    ax.set_ylabel(f"{metric.upper()} on {split} (95% CI)")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  plots._save(fig, path)  # pylint: disable=protected-access


def main(argv):
  del argv
  from jaxrec.errors import JaxrecError

  if not _OUT.value or not (_WORKDIRS.value or _POINTS.value):
    raise app.UsageError("give --out and at least one --workdir or --points")
  points = [p for path in _POINTS.value for p in read_points(pathlib.Path(path))]
  for w in _WORKDIRS.value:
    p = run_point(pathlib.Path(w), _SPLIT.value)
    if p["n"] < _MIN_ROWS.value:
      raise JaxrecError(f"{w}: its {_SPLIT.value} figures cover {p['n']} rows, fewer than --min_rows")
    points.append(p)
  out = pathlib.Path(_OUT.value)
  out.parent.mkdir(parents=True, exist_ok=True)
  with open(out.with_suffix(".csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(points)
  plot(points, out.with_suffix(".png"), _SPLIT.value)
  for p in sorted(points, key=lambda p: (p["method"], p["layers"], p["rows_seen"])):
    print(f"{p['method']:28s} layers {p['layers']:2d} rows {p['rows_seen']:6d}: AUC {p['auc']:.4f} "
          f"[{p['auc_lo']:.4f}, {p['auc_hi']:.4f}]  UAUC {p['uauc']:.4f} [{p['uauc_lo']:.4f}, {p['uauc_hi']:.4f}]")
  print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
  app.run(main)
