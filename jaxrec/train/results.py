"""`results.md`: a run's CTR metrics (overall / warm / cold) beside the numbers the papers report for that dataset,
and the pictures every run's results.md links (`pictures`).

Paper numbers are kept only where they were checked against the source; other rows point at the table to read.
The papers evaluate on test splits (held back here), with 7B LLMs: the comparison is a sanity anchor, not a target.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Mapping, Sequence

from jaxrec.paths import atomic_file
from jaxrec.train import plots

_TALLREC = "TALLRec (Bao et al., 2023) README Table 1, book (BookCrossing), LLaMA-7B"
# CoLLM (Zhang et al., arXiv 2310.19488v3) TABLE II, read in a markdown copy of https://arxiv.org/html/2310.19488v3
# kept in a public repository (the MF row is the one checked before). The LLM rows use Vicuna-7B; CoLLM-DIN on
# ML-1M tunes the whole CIE module (the paper says so under Table II). Methods and (ML-1M, Amazon-Book) AUC / UAUC:
_COLLM_TABLE_II = [
    ("MF", (0.6482, 0.6361), (0.7134, 0.5565)),
    ("LightGCN", (0.5959, 0.6499), (0.7103, 0.5639)),
    ("SASRec", (0.7078, 0.6884), (0.6887, 0.5714)),
    ("DIN", (0.7166, 0.6459), (0.8163, 0.6145)),
    ("TALLRec", (0.7097, 0.6818), (0.7375, 0.5983)),
    ("CoLLM-MF", (0.7295, 0.6875), (0.8109, 0.6225)),
    ("CoLLM-LightGCN", (0.7100, 0.6967), (0.8026, 0.6149)),
    ("CoLLM-SASRec", (0.7235, 0.6990), (0.7746, 0.5962)),
    ("CoLLM-DIN", (0.7353, 0.6923), (0.8245, 0.6474)),
]

# dataset name → [(method, AUC, UAUC, source)]
PAPER: dict[str, list[tuple[str, float | None, float | None, str]]] = {
    "ml1m_collm": [(m, *ml, "CoLLM Table II, ML-1M test") for m, ml, _ in _COLLM_TABLE_II],
    "amazon_book": [(m, *book, "CoLLM Table II, Amazon-Book test") for m, _, book in _COLLM_TABLE_II],
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


def pictures(workdir: pathlib.Path, config, finals: Mapping[str, Mapping[str, Any]],
             stages: Sequence[Mapping[str, Any]]) -> list[str]:
  """Draws a finished run's PNGs into `workdir` and returns the markdown lines that show them: training curves per
  stage; per final split, AUC / UAUC overall / warm / cold beside the CF model's on the same rows (CTR runs: their
  `vs_cf`; a run made before it existed shows its CF run's own metrics.json, each bar saying how many rows it covers)
  or P / R / NDCG against K (top-K)."""
  workdir = pathlib.Path(workdir)
  lines = ["## Pictures", ""]
  if (workdir / "metrics.jsonl").is_file() and stages:
    png = plots.training_curves(workdir / "metrics.jsonl", stages, workdir / "training_curves.png")
    lines += [f"![training curves: loss and validation metric against step]({png.name})", ""]
  model = config.get("model", {})
  cf = model.get("cf", {}) if model.get("family") == "llmrec" else {}  # the CF model a CoLLM run builds on
  for split, m in finals.items():
    if "auc" in m:
      models = {"this run": m}
      vs = m.get("vs_cf") if isinstance(m.get("vs_cf"), Mapping) else None
      name = str(vs.get("model", "cf") if vs else cf.get("name", "cf")).upper()  # TALLRec: its reference's name
      if vs:  # the CF model scored on this run's own rows
        models[f"CF model ({name}, same rows)"] = cf_side(vs)
      elif (own := read_split_metrics(cf["workdir"], split) if cf.get("workdir") else None):  # older runs
        models[f"CF model ({name}, its own run)"] = own
      png = plots.warm_cold_bars(models, split, workdir / f"warm_cold_{split}.png")
      lines += [f"![{split}: AUC / UAUC overall, warm and cold]({png.name})", ""]
    elif any(k.startswith("ndcg@") for k in m):
      ks = sorted(int(k.split("@")[1]) for k in m if k.startswith("ndcg@"))
      png = plots.topk_curves(m, ks, split, workdir / f"topk_{split}.png")
      lines += [f"![{split}: precision / recall / NDCG against K]({png.name})", ""]
  return lines


def cf_side(vs_cf: Mapping[str, Any]) -> dict[str, Any]:
  """The CF model's flat metrics ('auc', 'warm/uauc', 'n', ...) out of a run's `vs_cf` record."""
  out: dict[str, Any] = {}
  for group, prefix in (("all", ""), ("warm", "warm/"), ("cold", "cold/")):
    g = vs_cf.get(group)
    if isinstance(g, Mapping):
      out.update({f"{prefix}{m}": g[m]["a"] for m in ("auc", "uauc", "gauc") if m in g})
      out[f"{prefix}n"] = g.get("n")
  return out


def read_split_metrics(workdir, split: str) -> Mapping[str, Any] | None:
  """A finished run's final metrics of `split` (its metrics.json), or None when it has none."""
  try:
    return json.loads((pathlib.Path(workdir) / "metrics.json").read_text())["splits"][split]
  except (OSError, KeyError, ValueError):
    return None


def write_cf_results_md(path: pathlib.Path | str, config, finals: Mapping[str, Mapping[str, Any]],
                        stages: Sequence[Mapping[str, Any]], picture_lines: Sequence[str] = ()) -> None:
  """results.md of a CF baseline run: its final metrics, its stage, its pictures."""
  m = config.model
  keys = [k for k in next(iter(finals.values()), {}) if "/" not in k and not k.endswith("_ci")]
  lines = [f"# {m.name.upper()} on {config.data.name}", "", "| split | " + " | ".join(keys) + " |",
           "|---|" + "---|" * len(keys)]
  for split, res in finals.items():
    lines.append(f"| {split} | " + " | ".join(_with_ci(res, k) if isinstance(res.get(k), float) else
                                             str(res.get(k, "–")) for k in keys) + " |")
  lines += ["", rows_line(config, finals), "", "Stages:", ""] + [_stage_line(s) for s in stages]
  lines += ["", *picture_lines]
  with atomic_file(path, "w") as f:
    f.write("\n".join(lines) + "\n")


def _with_ci(res: Mapping[str, Any], key: str) -> str:
  """'0.6285 [0.6172, 0.6391]' when the metric has its 95% interval (`<key>_ci`), else the value alone."""
  ci = res.get(f"{key}_ci")
  return _f(res.get(key)) + (f" [{_f(ci[0])}, {_f(ci[1])}]" if ci else "")


def rows_line(config, finals: Mapping[str, Mapping[str, Any]]) -> str:
  """Which rows the figures cover: whole splits (or the test cap config.final_eval_rows), and the sample early
  stopping read during training (config.data.max_eval_rows)."""
  cap, sample = int(config.get("final_eval_rows", -1)), int(config.data.get("max_eval_rows", -1))
  sizes = ", ".join(f"{split}: {res['n']} rows" if "n" in res else f"{split}: {res.get('n_users', '?')} users"
                    for split, res in finals.items())
  what = "every row of each split" if cap < 0 else f"at most {cap} rows of each split (config.final_eval_rows)"
  es = ("the whole split" if sample < 0 else f"a fixed sample of {sample} rows of it (config.data.max_eval_rows)")
  line = f"Final figures on {what} ({sizes}); early stopping read {config.eval.split}: {es}."
  if any("auc_ci" in res for res in finals.values()):
    line += " Intervals: bootstrap, rows for AUC, users for UAUC / GAUC (1,000 resamples, seed 0)."
  return line


def vs_cf_lines(vs: Mapping[str, Mapping[str, Any]], text_only: bool = False) -> list[str]:
  """The paired comparison with the CF model on identical rows (`evaluate.paired_ctr`), one table row per split and
  group: CF model's AUC / UAUC, this run's, and the difference with its 95% paired interval. A text-only run
  (TALLRec) builds on no CF model: its reference is config.eval.reference_cf."""
  model = next(iter(vs.values())).get("model", "cf").upper()
  what = f"its CF reference ({model}, config.eval.reference_cf)" if text_only else f"its CF model ({model})"
  lines = [f"### Against {what}, on the same rows", "",
           "Paired bootstrap: both models on each resample's rows (AUC) or users (UAUC); difference = this run − "
           f"{model}.", "", f"| split | group | rows | {model} AUC | AUC | ΔAUC [95% CI] | {model} UAUC | UAUC | "
           "ΔUAUC [95% CI] |", "|---|---|---|---|---|---|---|---|---|"]
  for split, rec in vs.items():
    for group in ("all", "warm", "cold"):
      g = rec.get(group)
      if not isinstance(g, Mapping):
        continue
      cells = [split, group, str(g.get("n", "–"))]
      for m in ("auc", "uauc"):
        d = g[m]
        ci = d.get("diff_ci") or [None, None]
        cells += [_f(d["a"]), _f(d["b"]), f"{_signed(d['diff'])} [{_signed(ci[0])}, {_signed(ci[1])}]"]
      lines.append("| " + " | ".join(cells) + " |")
  return lines


def _signed(v) -> str:
  return "–" if v is None or v != v else f"{v:+.4f}"


def _stage_line(s: Mapping[str, Any]) -> str:
  return (f"- {s['name']}: best {s['metric']} {_f(s['best_value'])} at step {s['best_step']} of "
          f"{s['steps']}{' (stopped early)' if s.get('stopped_early') else ''}")


def write_results_md(path: pathlib.Path | str, config, finals: Mapping[str, Mapping[str, Any]],
                     stages: Sequence[Mapping[str, Any]], picture_lines: Sequence[str] = ()) -> None:
  m = config.model
  method = "TALLRec" if m.cf.name == "none" else f"CoLLM-FaissRet ({m.cf.name.upper()})"
  llm = m.llm or "SmolLM2-135M-Instruct (embedded)"
  lines = [f"# {method} on {config.data.name}", "",
           f"LLM: {llm}, layers kept: {m.keep_layers if m.keep_layers > 0 else 'all'}, LoRA r={m.lora.rank} "
           f"α={m.lora.alpha}, head: {m.head}; train rows cap: {config.data.get('max_train_rows', -1)}.", "",
           "| split | group | AUC [95% CI] | UAUC [95% CI] | GAUC [95% CI] | users in UAUC |", "|---|---|---|---|---|---|"]
  for split, res in finals.items():
    for group, prefix in (("overall", ""), ("warm", "warm/"), ("cold", "cold/")):
      if f"{prefix}auc" in res:
        lines.append(f"| {split} | {group} | {_with_ci(res, prefix + 'auc')} | {_with_ci(res, prefix + 'uauc')} | "
                     f"{_with_ci(res, prefix + 'gauc')} | {res.get(prefix + 'uauc_users', '–')} |")
  lines += ["", rows_line(config, finals)]
  vs = {split: res["vs_cf"] for split, res in finals.items() if isinstance(res.get("vs_cf"), Mapping)}
  if vs:
    lines += ["", *vs_cf_lines(vs, text_only=m.cf.name == "none")]
  lines += ["", "Stages:", ""] + [_stage_line(s) for s in stages]
  lines += ["", "## Reported in the papers (test splits, 7B LLMs)", "", "| method | AUC | UAUC | source |",
            "|---|---|---|---|"]
  for name, auc, uauc, src in PAPER.get(config.data.name, []):
    lines.append(f"| {name} | {_f(auc)} | {_f(uauc)} | {src} |")
  lines += ["", *picture_lines]
  with atomic_file(path, "w") as f:
    f.write("\n".join(lines) + "\n")
