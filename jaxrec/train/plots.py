"""The pictures results.md links: training curves, warm / cold bars beside the CF model, top-K metrics against K.

matplotlib's Agg backend, fixed sizes and no timestamp in the PNG metadata, so the same inputs give the same bytes.
Each function writes one PNG atomically and returns its path.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxrec.paths import atomic_file  # noqa: E402

DPI = 100
_META = {"Software": None}  # no matplotlib version string: bytes depend on the data only


def _save(fig, path: pathlib.Path) -> pathlib.Path:
  with atomic_file(path, "wb") as f:
    fig.savefig(f, format="png", dpi=DPI, metadata=_META)
  plt.close(fig)
  return path


def read_log(path: pathlib.Path) -> dict[tuple[str, str], dict[int, dict[str, Any]]]:
  """metrics.jsonl as {(stage, event): {step: record}}, the last record per step winning (a resumed run repeats
  the records written after its last checkpoint)."""
  out: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
  for line in pathlib.Path(path).read_text().splitlines():
    r = json.loads(line)
    out.setdefault((r["stage"], r["event"]), {})[int(r["step"])] = r
  return out


def training_curves(log_path: pathlib.Path, stages: Sequence[Mapping[str, Any]], path: pathlib.Path) -> pathlib.Path:
  """One row per stage: training loss against step, and the stage's early-stopping metric on validation."""
  log = read_log(log_path)
  fig, axes = plt.subplots(len(stages), 2, figsize=(9, 3 * len(stages)), squeeze=False)
  for row, stage in zip(axes, stages):
    name, metric = stage["name"], stage["metric"]
    train = sorted(log.get((name, "train"), {}).items())
    evals = sorted(log.get((name, "eval"), {}).items())
    row[0].plot([s for s, _ in train], [r.get("loss") for _, r in train], color="tab:blue")
    row[0].set(title=f"{name}: training loss", xlabel="step", ylabel="loss")
    row[1].plot([s for s, _ in evals], [r.get(metric) for _, r in evals], marker="o", color="tab:orange")
    if stage.get("best_step", -1) >= 0:
      row[1].axvline(stage["best_step"], color="grey", linestyle=":", label=f"best (step {stage['best_step']})")
      row[1].legend(loc="best")
    row[1].set(title=f"{name}: validation {metric}", xlabel="step", ylabel=metric)
    for ax in row:
      ax.grid(alpha=0.3)
  fig.tight_layout()
  return _save(fig, path)


def warm_cold_bars(models: Mapping[str, Mapping[str, Any]], split: str, path: pathlib.Path) -> pathlib.Path:
  """AUC and UAUC overall / warm / cold for each model ({label: flat CTR metrics of one split}), side by side."""
  groups = [("overall", ""), ("warm", "warm/"), ("cold", "cold/")]
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
  width = 0.8 / max(len(models), 1)
  for ax, metric in zip(axes, ("auc", "uauc")):
    for j, (label, m) in enumerate(models.items()):
      values = [m.get(prefix + metric) for _, prefix in groups]
      xs = [g + j * width for g in range(len(groups))]
      bars = ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=f"{label} (n={m.get('n', '?')})")
      for bar, v in zip(bars, values):
        if v is not None:
          ax.annotate(f"{v:.3f}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.axhline(0.5, color="grey", linestyle=":")
    ax.set_xticks([g + width * (len(models) - 1) / 2 for g in range(len(groups))], [g for g, _ in groups])
    ax.set(title=f"{split}: {metric.upper()}", ylim=(0.3, 1.0))
    ax.legend(loc="upper right", fontsize=7)
  fig.tight_layout()
  return _save(fig, path)


def topk_curves(metrics: Mapping[str, Any], ks: Sequence[int], split: str, path: pathlib.Path) -> pathlib.Path:
  """Precision / Recall / NDCG@K against K for one split's top-K metrics."""
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ks = sorted(ks)
  for name in ("precision", "recall", "ndcg"):
    ax.plot(ks, [metrics.get(f"{name}@{k}") for k in ks], marker="o", label=name)
  ax.set(title=f"{split}: top-K metrics", xlabel="K", xticks=ks)
  ax.grid(alpha=0.3)
  ax.legend(loc="best")
  fig.tight_layout()
  return _save(fig, path)
