"""Sensitivity sweeps and ablations of a config: one training run per value, then a CSV, a PNG plot and a table.

  python launch/sweep.py --config=configs/ml100k_multiscale.py --workdir=workdirs/sweep_lr --sweep=lr
  python launch/sweep.py --config=configs/ml100k_multiscale.py --workdir=workdirs/sweep_heads --sweep=heads
  python launch/sweep.py --config=configs/ml100k_multiscale.py --workdir=workdirs/ablations --sweep=ablations
  python launch/sweep.py --config=configs/ml100k_multiscale.py:single --workdir=workdirs/seeds_single --sweep=seed

  lr         stages[*].optimizer.lr over --values (default 1e-4,3e-4,1e-3,3e-3); plots Precision@K (the paper's
             Fig. 2)
  heads      model.fusion.heads (the LLM recommender) or model.heads (the CF towers, configs/ml1m_multiscale_cf.py)
             (default 1,2,4,8; each must divide the fused width); plots Coverage@K (Fig. 3)
  ablations  the variants of `jaxrec.train.multiscale_config.VARIANTS` (default full,nocenter,noprior,single,lam0,
             mean,beta0,k2); a bar chart of NDCG@10 / Precision@10 / Coverage@10
  seed       config.seed over --values (default 0,1,2): the seeded user sample, initialisation and negatives all
             change, so the spread is the run-to-run noise an ablation's difference must beat; the table ends with
             the mean and the sample standard deviation over seeds; same bar chart
Each run trains in <workdir>/<sweep>_<value>/ (a finished run of the same config is read back, not evaluated again;
a killed one resumes) with the config's own budget and the other --config.x=... overrides; the sweep writes
<workdir>/<sweep>.csv (one row per value, every metric of config.eval.split), <workdir>/<sweep>.png and
<workdir>/<sweep>.md, and prints the table.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxrec.errors import JaxrecError  # noqa: E402
from jaxrec.train import workdir as run_dir  # noqa: E402
from jaxrec.tree import flatten  # noqa: E402
from launch import _cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "config file, e.g. configs/ml100k_multiscale.py[:arg]")
_WORKDIR = flags.DEFINE_string("workdir", None, "sweep directory (one run folder per value inside)")
_SWEEP = flags.DEFINE_enum("sweep", "lr", ["lr", "heads", "ablations", "seed"], "what to vary")
_VALUES = flags.DEFINE_list("values", None, "values to try (default: see the module docstring)")
_PROGRESS = flags.DEFINE_bool("progress", False, "show the progress bars")

DEFAULTS = {"lr": ["1e-4", "3e-4", "1e-3", "3e-3"], "heads": ["1", "2", "4", "8"],
            "ablations": ["full", "nocenter", "noprior", "single", "lam0", "mean", "beta0", "k2"], "seed": ["0", "1", "2"]}
PLOTTED = {"lr": "precision", "heads": "coverage", "ablations": None, "seed": None}


def variant_config(config, sweep: str, value: str):
  """A copy of `config` with the swept field set to `value`."""
  from jaxrec.train import multiscale_config as MC

  c = copy.deepcopy(config)
  if sweep == "lr":
    for stage in c.stages:
      stage.optimizer.lr = float(value)
  elif sweep == "heads":
    if "fusion" in c.model:  # the LLM recommender (configs/ml*_multiscale.py)
      c.model.fusion.heads = int(value)
    elif "heads" in c.model:  # the CF towers with a text path ('mscf', 'mscf_gcn')
      c.model.heads = int(value)
    else:
      raise JaxrecError(f"--sweep=heads: config.model ({c.model.get('name')!r}) has no cross-scale fusion heads")
  elif sweep == "seed":
    c.seed = int(value)
  else:
    name = "" if value == "full" else value
    if name not in MC.VARIANTS:
      raise JaxrecError(f"--values: unknown ablation {value!r}; expected full or one of "
                        f"{sorted(v for v in MC.VARIANTS if v)}")
    c.model.update_from_flattened_dict(flatten(MC.VARIANTS[name], sep="."))
    if c.model.scales.num == 1:
      c.model.align.lam = 0.0
  return c


def run_sweep(config, workdir, sweep: str, values=None, progress: bool = False) -> list[dict]:
  """Trains every value and writes <sweep>.csv / .png / .md into `workdir`; returns the CSV rows."""
  values = list(values or DEFAULTS[sweep])
  workdir = pathlib.Path(workdir)
  with run_dir.claim(workdir):  # one sweep per folder; each run also locks its own
    return _run_sweep(config, workdir, sweep, values, progress)


def _run_sweep(config, workdir: pathlib.Path, sweep: str, values: list, progress: bool) -> list[dict]:
  from jaxrec.train import task

  split = config.eval.split
  rows = []
  for value in values:
    variant, run = variant_config(config, sweep, value), workdir / f"{sweep}_{value}"
    results = finished_results(variant, run) or task.train(variant, run, progress=progress)
    metrics = results.get(split) or next(iter(results.values()))
    rows.append({sweep: value, **{k: v for k, v in metrics.items() if isinstance(v, (int, float))}})
  write_outputs(rows, workdir, sweep, list(config.eval.ks))
  return rows


def finished_results(config, run: pathlib.Path) -> dict | None:
  """The final metrics of a finished run of exactly `config` (so a sweep point shared with another sweep, e.g. the
  default lr, is not evaluated again), else None."""
  from jaxrec.train.workdir import training_fields  # config.report only labels results.md

  try:
    same = (training_fields(json.loads((run / "config.json").read_text()))
            == training_fields(json.loads(config.to_json_best_effort())))
    return json.loads((run / "metrics.json").read_text())["splits"] if same else None
  except (OSError, KeyError, ValueError):
    return None


def _column_order(field: str):
  """The swept field, then metrics by K in the order precision, recall, ndcg, coverage, hit, then the rest."""
  name, _, k = field.partition("@")
  order = ("precision", "recall", "ndcg", "coverage", "hit")
  if not k:
    return (0 if field in DEFAULTS else 2, 0, 0, field)
  return (1, int(k), order.index(name) if name in order else len(order), field)


def write_outputs(rows: list[dict], workdir: pathlib.Path, sweep: str, ks) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fields = sorted(dict.fromkeys(k for r in rows for k in r), key=_column_order)  # read-back runs come key-sorted
  with open(workdir / f"{sweep}.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
  shown = [f for f in fields if f != sweep and "@" in f and not f.startswith("hit")]
  table = ["| " + " | ".join([sweep] + shown) + " |", "|" + "---|" * (len(shown) + 1)]
  table += ["| " + " | ".join([str(r[sweep])] + [f"{r.get(c, float('nan')):.4f}" for c in shown]) + " |"
            for r in rows]
  if sweep == "seed" and len(rows) > 1:  # the run-to-run noise: mean and sample sd over the seeds that have the metric
    import numpy as np
    for name, fn in (("mean", np.nanmean), ("sd", lambda v: np.nanstd(v, ddof=1))):
      table.append("| " + " | ".join([name] + [f"{fn([r.get(c, float('nan')) for r in rows]):.4f}" for c in shown])
                   + " |")
  (workdir / f"{sweep}.md").write_text("\n".join(table) + "\n")
  print("\n".join(table), flush=True)

  fig, ax = plt.subplots(figsize=(5, 3.5))
  labels = [str(r[sweep]) for r in rows]
  metric = PLOTTED[sweep]
  if metric is None:  # accuracy beside diversity: an ablation can trade one for the other
    names = ("ndcg@10", "precision@10", "coverage@10")
    width = 0.8 / len(names)
    for i, name in enumerate(names):
      ax.bar([x + i * width for x in range(len(rows))], [r.get(name, 0.0) for r in rows], width, label=name)
    ax.set_xticks([x + width for x in range(len(rows))], labels, rotation=30, ha="right")
    ax.set_ylabel("validation metric")
  else:
    xs = [float(v) for v in labels]
    for k in ks:
      ax.plot(xs, [r.get(f"{metric}@{k}", float("nan")) for r in rows], marker="o", label=f"{metric}@{k}")
    if sweep == "lr":
      ax.set_xscale("log")
    ax.set_xlabel({"lr": "learning rate", "heads": "attention heads h"}[sweep])
    ax.set_ylabel(metric)
  ax.legend()
  ax.set_title(f"{sweep} sweep (validation)")
  fig.tight_layout()
  fig.savefig(workdir / f"{sweep}.png", dpi=120)
  plt.close(fig)


def main(argv):
  logging.set_verbosity(logging.WARNING)
  if len(argv) > 1:
    _cli.fail(f"unexpected arguments {argv[1:]}")
  config = _cli.config_value(_CONFIG)
  if not _WORKDIR.value:
    _cli.fail("--workdir is required")
  try:
    run_sweep(config, _WORKDIR.value, _SWEEP.value, _VALUES.value, _PROGRESS.value)
  except JaxrecError as e:
    _cli.fail(str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=_cli.parse_flags)
