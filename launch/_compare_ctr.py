"""launch/compare.py for CTR runs: AUC / UAUC / GAUC of each run on the rows they all scored, with 95% bootstrap
intervals, and each run's paired difference to the first (overall, warm, cold)."""

from __future__ import annotations

import numpy as np

CTR = ("auc", "uauc", "gauc")


def row_keys(run: dict[str, np.ndarray]) -> np.ndarray:
  """[N] int64 key of each row: (user, item, occurrence of that pair in the split), so a pair seen twice matches
  its own twin in another run's file."""
  user, item = run["user"].astype(np.int64), run["item"].astype(np.int64)
  pair = user * (int(item.max(initial=0)) + 1) + item  # unique per (user, item)
  order = np.argsort(pair, kind="stable")
  sorted_pair = pair[order]
  starts = np.flatnonzero(np.r_[True, sorted_pair[1:] != sorted_pair[:-1]])
  occurrence = np.empty(len(pair), np.int64)
  occurrence[order] = np.arange(len(pair)) - np.repeat(starts, np.diff(np.r_[starts, len(pair)]))
  return pair * 64 + np.minimum(occurrence, 63)


def align(workdirs, runs) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
  """(the common rows' user / label / warm arrays, each run's scores on them), in the first run's row order."""
  from jaxrec.errors import JaxrecError

  keys = [row_keys(r) for r in runs]
  common = keys[0]
  for k in keys[1:]:
    common = np.intersect1d(common, k)
  if not len(common):
    raise JaxrecError("--workdir: the runs share no scored row (same dataset and split?)")
  ordered = keys[0][np.isin(keys[0], common)]  # the first run's row order, so its own intervals are reproduced
  index = [np.argsort(k, kind="stable")[np.searchsorted(np.sort(k), ordered)] for k in keys]
  first = runs[0]
  rows = {"user": first["user"][index[0]], "label": first["label"][index[0]] > 0.5}
  if "warm" in first:
    rows["warm"] = first["warm"][index[0]]
  for w, r, idx in zip(workdirs[1:], runs[1:], index[1:]):
    if not np.array_equal(r["label"][idx] > 0.5, rows["label"]):
      raise JaxrecError(f"{w}: its labels differ from {workdirs[0]}'s on the same (user, item) rows; not the same "
                        f"split")
  return rows, [r["score"][idx] for r, idx in zip(runs, index)]


def compare(workdirs, runs, split: str, labels, metrics=None) -> tuple[list[dict], str]:
  from jaxrec import evaluate as ev, metrics as M
  from jaxrec.errors import JaxrecError

  names = [m for m in (metrics or CTR) if m]
  bad = [m for m in names if m not in CTR]
  if bad:
    raise JaxrecError(f"--metrics: {bad[0]!r} is not a CTR metric; expected some of {list(CTR)}")
  rows_, scores = align(workdirs, runs)
  out = []
  groups = ev.row_groups(len(rows_["label"]), rows_.get("warm"))
  for k, (w, label, r, s) in enumerate(zip(workdirs, labels, runs, scores)):
    base = ev.ctr_metrics(rows_["user"], rows_["label"], s, rows_.get("warm"), intervals=True)
    # the reference against itself would be a zero difference: not bootstrapped
    paired = ev.paired_ctr(rows_["user"], rows_["label"], scores[0], s, rows_.get("warm")) if k else None
    row = {"run": label, "workdir": str(w), "rows": int(len(s)), "rows_scored": int(len(r["score"]))}
    for group, rows_in_group in groups.items():
      prefix = "" if group == "all" else f"{group}/"
      for m in names:
        key = f"{prefix}{m}"
        row[key], row[f"{key} ci"] = base[key], list(base[f"{key}_ci"])
        if paired is not None:
          row[f"{key} diff"], row[f"{key} diff ci"] = paired[group][m]["diff"], paired[group][m]["diff_ci"]
      row[f"{prefix}n"] = int(rows_in_group.sum())
    out.append(row)
  return out, markdown(out, names, split, labels[0])


def markdown(rows, names, split, reference) -> str:
  groups = [(g, p) for g, p in (("all", ""), ("warm", "warm/"), ("cold", "cold/")) if f"{p}n" in rows[0]]
  head = ["run", "group", "rows"] + [f"{m.upper()} [95% CI]" for m in names] + \
         [f"{m.upper()} − {reference} [95% CI]" for m in names]
  lines = [f"Split {split}: the rows every run scored (matched by user and item); intervals: bootstrap, rows for "
           "AUC, users for UAUC / GAUC; differences paired (both runs on each resample). 1,000 resamples, seed 0.",
           "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in rows:
    for group, p in groups:
      n = f"{r[p + 'n']}" + (f" (of {r['rows_scored']})" if not p and r["rows_scored"] != r["rows"] else "")
      cells = [r["run"], group, n]
      cells += [f"{r[p + m]:.4f} [{r[p + m + ' ci'][0]:.4f}, {r[p + m + ' ci'][1]:.4f}]" for m in names]
      cells += ["–" if r is rows[0] else f"{r[p + m + ' diff']:+.4f} [{r[p + m + ' diff ci'][0]:+.4f}, "
                f"{r[p + m + ' diff ci'][1]:+.4f}]" for m in names]
      lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"
