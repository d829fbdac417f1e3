"""workdir/results.md of a multi-scale run: its top-K table beside CF baselines and the paper's reported figures.

Rows: this run on each final split, the most-popular ranking on it, then every baseline named in
`config.report.baselines` ({label: workdir of a finished launch/train.py run on the same split}; its metrics.json is
read, missing ones are listed as such), then `config.report.paper` ({metric: value}, the paper's Table 1) when filled
in. The paper does not say which K its Precision / Recall / NDCG / Coverage use. NDCG cells carry ± its standard
error over users where the run recorded it (differences well inside it are noise).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping

from jaxrec.paths import atomic_file
from jaxrec.train.results import read_split_metrics

METRICS = ("precision", "recall", "ndcg", "coverage")


def columns_for(ks) -> list[str]:
  """The table's columns: each metric at each K of config.eval.ks, in that order."""
  return [f"{m}@{int(k)}" for k in ks for m in METRICS]


def _row(label: str, metrics: Mapping, columns) -> str:
  cells = []
  for c in columns:
    v, se = metrics.get(c), metrics.get(c.replace("ndcg@", "ndcg_se@")) if c.startswith("ndcg@") else None
    cells.append("-" if v is None else f"{float(v):.4f}" + ("" if se is None else f" ± {float(se):.4f}"))
  return f"| {label} | " + " | ".join(cells) + " |"


def baseline_rows(baselines: Mapping[str, str], split: str, columns) -> list[str]:
  rows = []
  for label, workdir in baselines.items():
    metrics = read_split_metrics(workdir, split)
    if metrics is None:
      path = pathlib.Path(workdir) / "metrics.json"
      rows.append(f"| {label} | " + " | ".join("-" for _ in columns) + f" |  (no {split} metrics at {path})")
      continue
    rows.append(_row(f"{label} ({split})", metrics, columns))
  return rows


def write_results(path, config, results: Mapping[str, Mapping], budget: Mapping,
                  most_popular: Mapping[str, Mapping] | None = None, picture_lines=()) -> None:
  columns = columns_for(config.eval.ks)
  report = config.get("report", {})
  lines = [f"# Multi-scale LoRA recommender: {config.data.name}", "",
           f"Model: K = {budget.get('scales')} scales, λ = {config.model.align.lam} (M {config.model.align.m}), "
           f"fusion {config.model.fusion.kind} (h = {config.model.fusion.heads}), β = {config.model.loss.beta}, "
           f"L_rec {config.model.loss.rec}, LoRA r = {config.model.lora.rank}, centring "
           f"{'on' if config.model.get('center', False) else 'off'}, popularity prior γ = "
           f"{config.model.get('pop_prior', 0.0)}.", "",
           f"Budget: {json.dumps(dict(budget), sort_keys=True)}", "",
           "Full-catalogue top-K, the user's training items masked, one query per user.", "",
           "| run | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
  lines += [_row(f"multi-scale ({split})", m, columns) for split, m in results.items()]
  lines += [_row(f"most popular in train ({split})", m, columns) for split, m in (most_popular or {}).items()]
  base = dict(report.get("baselines", {}) or {})
  for split in results:
    lines += baseline_rows(base, split, columns)
  paper = dict(report.get("paper", {}) or {})
  if paper:
    lines.append(_row("paper (Table 1, K not stated)", paper, columns))
  lines += [""]
  source = report.get("paper_source", "")
  if not paper:
    lines.append(f"The paper's Table 1 figures{f' ({source})' if source else ''} are not recorded in this "
                 "repository (set config.report.paper to show them here); note the paper does not say which K its "
                 "metrics use.")
  elif source:
    lines.append(f"Paper: {source}.")
  if not base:
    lines.append("No CF baselines named (config.report.baselines = {label: workdir of a finished CF run on the "
                 "same split}).")
  lines += ["", *picture_lines]
  with atomic_file(path, "w") as f:
    f.write("\n".join(lines) + "\n")
