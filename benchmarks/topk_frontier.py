"""Accuracy against coverage: the NDCG@10 / Coverage@10 frontier of trained top-K CF runs under a popularity penalty.

  python benchmarks/topk_frontier.py --workdir=W_mf --workdir=W_lightgcn --betas=0,0.05,0.1,0.2,0.3 \
      --out=benchmarks/results/multiscale/frontier_ml1m

Issue #14 asks a model to beat LightGCN in NDCG@10 *and* Coverage@10. Any model trades one for the other by ranking
with score(u, i) − β · log(1 + n_i) (n_i: item i's positive training rows; β = 0 is the model as trained), so a
claim "better on both" is only meaningful against each model's whole curve: model A dominates B where A's curve lies
above and right of B's. Each run's exported embeddings (`embeddings/user.npy`, `item.npy`: id models whose scores are
⟨p_u, q_i⟩ — MF, LightGCN, mscf) score every validation user over the full catalogue with training items masked (the
runs' own protocol, `jaxrec.evaluate.evaluate_topk`). Writes `<out>.csv`, `<out>.png` and `<out>.md` (with the
machine); β is a ranking-time choice, so pick it on validation only.
"""

from __future__ import annotations

import csv
import os
import pathlib
import platform
import sys
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



def penalty(train_items, train_labels, n_items: int) -> "np.ndarray":
  """[I + 1] log(1 + n_i), n_i = positive training rows of item i (row 0, padding, gets 0)."""
  import numpy as np

  from jaxrec.data.schema import positive_item_counts

  counts = positive_item_counts(train_items, train_labels, n_items).astype(np.float64)
  counts[0] = 0.0
  return np.log1p(counts)


def frontier(workdir, betas, split: str = "valid") -> list[dict]:
  """One row per β: {'beta', 'ndcg@10', 'coverage@10', 'precision@10', 'recall@10', 'n_users'}."""
  import numpy as np

  from jaxrec import evaluate as ev
  from jaxrec.data import schema
  from jaxrec.data.sampling import sample_rows
  from jaxrec.errors import JaxrecError
  from jaxrec.train import cf_task, workdir as run_dir

  workdir = pathlib.Path(workdir)
  config = run_dir.read_config(workdir)
  paths = [workdir / "embeddings" / f"{n}.npy" for n in ("user", "item")]
  for p in paths:
    if not p.is_file():
      raise JaxrecError(f"{p}: missing; expected a finished id-model run (MF, LightGCN, mscf) with exported embeddings")
  user, item = (np.load(p, allow_pickle=False).astype(np.float32) for p in paths)  # [U + 1, d], [I + 1, d]
  dataset = cf_task.load(config)  # with the run's sampled eval users, if any
  if item.shape[0] != dataset.n_items + 1:
    raise JaxrecError(f"{paths[1]}: {item.shape[0]} rows, the run's dataset has {dataset.n_items} items + padding")
  train = dataset.splits["train"]
  pen = penalty(train.item, train.label, dataset.n_items)  # [I + 1]
  masked = schema.seen_items(dataset)
  # the rows the run's final evaluation reported (all, unless config.final_eval_rows caps them: the tiny configs)
  rows_of_split = sample_rows(dataset.splits[split], int(config.get("final_eval_rows", -1)),
                              int(config.data.get("seed", 0)))
  rows = []
  for beta in betas:
    def score(batch, beta=beta):  # [B, I + 1]
      s = user[batch["user"]] @ item.T - beta * pen[None]
      s[:, 0] = -np.inf  # padding is never recommended
      return s
    out = ev.evaluate_topk(score, rows_of_split, masked, dataset.n_items, (10,), 512)
    rows.append({"beta": beta, **{k: float(out[k]) for k in ("ndcg@10", "coverage@10", "precision@10", "recall@10")},
                 "n_users": int(out["n_users"])})
  return rows


def main(argv: list[str]) -> None:
  # flags on a private FlagValues: importing this module (tests) defines nothing in absl's global flags
  fv = flags.FlagValues()
  _WORKDIRS = flags.DEFINE_multi_string("workdir", [], "finished CF runs with exported user and item embeddings",
                                        flag_values=fv)
  _BETAS = flags.DEFINE_string("betas", "0,0.05,0.1,0.15,0.2,0.3", "popularity penalties β, comma-separated",
                               flag_values=fv)
  _SPLIT = flags.DEFINE_string("split", "valid", "the runs' dataset split to rank on", flag_values=fv)
  _OUT = flags.DEFINE_string("out", "", "output path stem (.csv / .png / .md); empty: print only", flag_values=fv)
  fv(argv)
  import jaxlib

  from jaxrec.train import workdir as run_dir

  betas = [float(b) for b in _BETAS.value.split(",") if b.strip()]
  table, start = [], time.perf_counter()
  for w in _WORKDIRS.value:
    name = f"{run_dir.read_config(w).model.name} ({pathlib.Path(w).name})"
    for row in frontier(w, betas, _SPLIT.value):
      table.append({"run": name, **row})
      print(f"{name}: β {row['beta']:g}  NDCG@10 {row['ndcg@10']:.4f}  Cov@10 {row['coverage@10']:.4f}", flush=True)
  cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
             platform.processor())
  machine = f"{cpu}, {os.cpu_count()} cores, jaxlib {jaxlib.__version__}, {time.perf_counter() - start:.0f} s"
  print(machine)
  if not _OUT.value:
    return
  out = pathlib.Path(_OUT.value)
  out.parent.mkdir(parents=True, exist_ok=True)
  with open(out.with_suffix(".csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(table[0]))
    w.writeheader()
    w.writerows(table)
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4.5))
  for run in dict.fromkeys(r["run"] for r in table):
    pts = [r for r in table if r["run"] == run]
    ax.plot([r["coverage@10"] for r in pts], [r["ndcg@10"] for r in pts], "o-", label=run)
  ax.set_xlabel("Coverage@10")
  ax.set_ylabel("NDCG@10")
  ax.set_title(f"{_SPLIT.value}: score − β·log(1 + n_i), β = {', '.join(f'{b:g}' for b in betas)}")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out.with_suffix(".png"), dpi=120)
  lines = [f"# NDCG@10 against Coverage@10 under a popularity penalty ({_SPLIT.value})", "",
           f"`python benchmarks/topk_frontier.py {' '.join('--workdir=' + w for w in _WORKDIRS.value)} "
           f"--betas={_BETAS.value} --out={_OUT.value}`; {machine}.", "",
           "| run | β | NDCG@10 | Coverage@10 | P@10 | R@10 | users |", "|---|---|---|---|---|---|---|"]
  lines += [f"| {r['run']} | {r['beta']:g} | {r['ndcg@10']:.4f} | {r['coverage@10']:.4f} | {r['precision@10']:.4f} | "
            f"{r['recall@10']:.4f} | {r['n_users']} |" for r in table]
  out.with_suffix(".md").write_text("\n".join(lines) + f"\n\n![frontier]({out.with_suffix('.png').name})\n")


if __name__ == "__main__":
  main(sys.argv)
