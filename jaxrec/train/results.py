"""`results.md`: a run's CTR metrics (overall / warm / cold) beside the numbers the papers report for that dataset.

Paper numbers are kept only where they were checked against the source; other rows point at the table to read.
The papers evaluate on test splits (held back here), with 7B LLMs: the comparison is a sanity anchor, not a target.
"""

from __future__ import annotations

import pathlib
from typing import Any, Mapping, Sequence

from jaxrec.paths import atomic_file

_TALLREC = "TALLRec (Bao et al., 2023) README Table 1, book (BookCrossing), LLaMA-7B"

# dataset name → [(method, AUC, UAUC, source)]; None = not transcribed (see the source)
PAPER: dict[str, list[tuple[str, float | None, float | None, str]]] = {
    "ml1m_collm": [
        ("MF", 0.6482, 0.6361, "CoLLM (Zhang et al., 2023) Table 2, ML-1M test"),
        ("TALLRec / CoLLM-MF / CoLLM-DIN", None, None, "CoLLM Table 2, ML-1M test (Vicuna-7B)"),
    ],
    "amazon_book": [("TALLRec / CoLLM variants", None, None, "CoLLM Table 2, Amazon-Book test (Vicuna-7B)")],
    # TALLRec's README ("Main results", its Table 1: AUC in %, book columns; github.com/SAI990323/TALLRec), read in
    # the stored snapshot of that repository. TALLRec reports no UAUC.
    "bookcrossing": [
        ("TALLRec 16-shot", 0.5636, None, _TALLREC),
        ("TALLRec 64-shot", 0.6039, None, _TALLREC),
        ("TALLRec 256-shot", 0.6438, None, _TALLREC),
        ("SASRec 16-shot", 0.4948, None, _TALLREC),
        ("SASRec 64-shot", 0.5006, None, _TALLREC),
        ("SASRec 256-shot", 0.5020, None, _TALLREC),
    ],
    "ml100k": [],
}


def _f(v) -> str:
  return "–" if v is None or v != v else f"{v:.4f}"


def write_results_md(path: pathlib.Path | str, config, finals: Mapping[str, Mapping[str, Any]],
                     stages: Sequence[Mapping[str, Any]]) -> None:
  m = config.model
  method = "TALLRec" if m.cf.name == "none" else f"CoLLM-FaissRet ({m.cf.name.upper()})"
  llm = m.llm or "SmolLM2-135M-Instruct (embedded)"
  lines = [f"# {method} on {config.data.name}", "",
           f"LLM: {llm}, layers kept: {m.keep_layers if m.keep_layers > 0 else 'all'}, LoRA r={m.lora.rank} "
           f"α={m.lora.alpha}, head: {m.head}; train rows cap: {config.data.get('max_train_rows', -1)}.", "",
           "| split | group | AUC | UAUC | GAUC | users in UAUC |", "|---|---|---|---|---|---|"]
  for split, res in finals.items():
    for group, prefix in (("overall", ""), ("warm", "warm/"), ("cold", "cold/")):
      if f"{prefix}auc" in res:
        lines.append(f"| {split} | {group} | {_f(res.get(prefix + 'auc'))} | {_f(res.get(prefix + 'uauc'))} | "
                     f"{_f(res.get(prefix + 'gauc'))} | {res.get(prefix + 'uauc_users', '–')} |")
  lines += ["", "Stages:", ""]
  for s in stages:
    lines.append(f"- {s['name']}: best {s['metric']} {_f(s['best_value'])} at step {s['best_step']} of "
                 f"{s['steps']}{' (stopped early)' if s.get('stopped_early') else ''}")
  lines += ["", "## Reported in the papers (test splits, 7B LLMs)", "", "| method | AUC | UAUC | source |",
            "|---|---|---|---|"]
  for name, auc, uauc, src in PAPER.get(config.data.name, []):
    lines.append(f"| {name} | {_f(auc)} | {_f(uauc)} | {src} |")
  with atomic_file(path, "w") as f:
    f.write("\n".join(lines) + "\n")
