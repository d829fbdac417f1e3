"""Compares finished runs on identical users (top-K) or identical rows (CTR): each metric with its 95% bootstrap
interval, and the paired difference of each run to the first one with its interval.

  python launch/compare.py --workdir=workdirs/topk/ease --workdir=workdirs/topk/mf --split=valid \\
      [--label=EASE --label=MF] [--metrics=ndcg@10,recall@10] [--output=table.md]
  python launch/compare.py --workdir=workdirs/mf_ml1m --workdir=workdirs/collm_ml1m --split=valid

Top-K runs: reads `<workdir>/per_user/<split>.npz` (written by launch/train.py's final evaluation, or
`<workdir>/eval/per_user/<split>.npz` by launch/evaluate.py) and metrics.json for Coverage; runs are compared on
the users they all scored. Intervals: percentile bootstrap over users (1,000 resamples, seed 0;
`jaxrec.metrics.bootstrap_ci`), on the per-user values for a run and on the per-user differences for a pair.

CTR runs (CF baselines, TALLRec, CoLLM): reads `per_row/<split>.npz` (every row's score) and compares AUC / UAUC /
GAUC on the rows they all scored (matched by user and item), overall and warm / cold where the split says which
rows are warm. Intervals: bootstrap over rows for AUC and over users for UAUC / GAUC (`metrics.ctr_intervals`); a
pair's by resampling both runs together (`metrics.paired_ctr_differences`). Errors print one line `error: ...` and
exit with 2.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import flags  # noqa: E402

from launch import _cli  # noqa: E402


def _saved(workdir: pathlib.Path, split: str):
  """('topk', per-user arrays) or ('ctr', per-row arrays) of a finished run's final (or launch/evaluate.py) split."""
  from jaxrec import evaluate as ev
  from jaxrec.errors import JaxrecError

  for kind, folder in (("topk", "per_user"), ("ctr", "per_row")):
    for path in (workdir / folder / f"{split}.npz", workdir / "eval" / folder / f"{split}.npz"):
      if path.is_file():
        try:
          arrays = ev.read_arrays(path)
          # per-user files written before the names were unified say 'ndcg_at_10' for 'ndcg@10'
          return kind, {k.replace("_at_", "@"): v for k, v in arrays.items()}
        except (OSError, ValueError) as e:
          raise JaxrecError(f"{path}: not a {folder.replace('_', '-')} results file ({e})") from None
  raise JaxrecError(f"{workdir}: no per-user or per-row results for split {split!r} (a finished run writes "
                    f"per_user/{split}.npz (top-K) or per_row/{split}.npz (CTR); `launch/evaluate.py "
                    f"--workdir={workdir} --split={split}` makes one)")


def compare(workdirs, split: str, labels=None, metrics=None) -> tuple[list[dict], str]:
  """(rows, markdown table): per run, each metric's mean and interval over the common users, and its paired
  difference to the first run."""
  import numpy as np

  from jaxrec import metrics as M
  from jaxrec.errors import JaxrecError

  workdirs = [pathlib.Path(w) for w in workdirs]
  labels = list(labels or [w.name for w in workdirs])
  if len(labels) != len(workdirs):
    raise JaxrecError(f"--label: {len(labels)} labels for {len(workdirs)} workdirs")
  saved = [_saved(w, split) for w in workdirs]
  kinds = {kind for kind, _ in saved}
  if len(kinds) > 1:
    raise JaxrecError(f"--workdir: {workdirs[0]} and {workdirs[[k for k, _ in saved].index(kinds.pop())]} are not "
                      f"the same kind of run (a top-K and a CTR one); compare runs of one kind")
  runs = [arrays for _, arrays in saved]
  if saved[0][0] == "ctr":
    from launch import _compare_ctr

    return _compare_ctr.compare(workdirs, runs, split, labels, metrics)
  common = runs[0]["user"]
  for r in runs[1:]:
    common = np.intersect1d(common, r["user"])
  if not len(common):
    raise JaxrecError(f"--split={split}: the runs share no user")
  names = [m for m in (metrics or [k for k in runs[0] if k != "user"]) if m]
  for w, r in zip(workdirs, runs):
    missing = [m for m in names if m not in r]
    if missing:
      raise JaxrecError(f"{w}: no per-user {missing[0]!r} for split {split!r}; it has {sorted(set(r) - {'user'})}")
  aligned = [{m: r[m][np.searchsorted(r["user"], common)] for m in names} for r in runs]
  rows = []
  for w, label, r, a in zip(workdirs, labels, runs, aligned):
    row = {"run": label, "workdir": str(w), "users": int(len(common)), "users_scored": int(len(r["user"]))}
    for m in names:
      row[m] = float(a[m].mean())
      row[f"{m} ci"] = M.bootstrap_ci(a[m])
      diff = a[m] - aligned[0][m]
      row[f"{m} diff"] = float(diff.mean())
      row[f"{m} diff ci"] = M.bootstrap_ci(diff)
    try:
      split_metrics = json.loads((w / "metrics.json").read_text())["splits"][split]
      row.update({k: v for k, v in split_metrics.items() if k.startswith("coverage@")})
    except (OSError, KeyError, ValueError):
      pass
    rows.append(row)
  return rows, _markdown(rows, names, split, labels[0])


def _markdown(rows, names, split, reference) -> str:
  cov = sorted({k for r in rows for k in r if k.startswith("coverage@")}, key=lambda k: int(k.split("@")[1]))
  head = ["run", "users"] + [f"{m} [95% CI]" for m in names] + [f"{m} − {reference} [95% CI]" for m in names] + cov
  lines = [f"Split {split}: means over the users every run scored; intervals: bootstrap over users (1,000, seed 0).",
           "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in rows:
    users = f"{r['users']}" + (f" (of {r['users_scored']})" if r["users_scored"] != r["users"] else "")
    cells = [r["run"], users]
    cells += [f"{r[m]:.4f} [{r[m + ' ci'][0]:.4f}, {r[m + ' ci'][1]:.4f}]" for m in names]
    cells += ["–" if r is rows[0] else f"{r[m + ' diff']:+.4f} [{r[m + ' diff ci'][0]:+.4f}, "
              f"{r[m + ' diff ci'][1]:+.4f}]" for m in names]
    cells += [f"{r[c]:.4f}" if c in r else "–" for c in cov]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv: list[str]) -> list[dict]:
  fv = flags.FlagValues()
  workdirs = flags.DEFINE_multi_string("workdir", [], "a finished run, top-K or CTR (the first is the reference)",
                                       flag_values=fv)
  split = flags.DEFINE_string("split", "valid", "split name", flag_values=fv)
  labels = flags.DEFINE_multi_string("label", [], "a name per --workdir (default: the folder names)", flag_values=fv)
  metric_list = flags.DEFINE_list("metrics", [], "per-user metrics to compare (default: all)", flag_values=fv)
  output = flags.DEFINE_string("output", None, "also write the markdown table here", flag_values=fv)
  rest = _cli.parse_flags(argv, fv)
  if len(rest) > 1:
    _cli.fail(f"unexpected arguments {rest[1:]}")
  if len(workdirs.value) < 2:
    _cli.fail("--workdir: give at least two finished runs to compare")
  from jaxrec.paths import atomic_file

  rows, table = compare(workdirs.value, split.value, labels.value, metric_list.value)
  print(table, end="", flush=True)
  if output.value:
    with atomic_file(output.value, "w") as f:
      f.write(table)
  return rows


if __name__ == "__main__":
  _cli.run(main)
