"""The one evaluator: collect a model's scores on a split, compute the metrics, break them down, write and print.

Model-agnostic: it sees a `score_batch(batch) -> [B] scores` (CTR) or `score_all_batch(batch) -> [B, n_items + 1]`
(top-K) callable, so CF models, the LLM models and later ones share it. Imports only `jaxrec.metrics`, `paths` and
`errors`, so training tasks may use it for validation.

Output: a flat dict. CTR: auc, uauc, gauc (RecBole's, positive-weighted), uauc_users, uauc_skipped, n, pos_rate, and
the same under 'warm/' and 'cold/' when the split has a `warm` flag with both values. Top-K: precision@K,
recall@K, ndcg@K, hit@K, coverage@K and ndcg_se@K (NDCG's standard error over users) for each K, from
full-catalogue rankings with the user's training items masked.
"""

from __future__ import annotations

import contextlib
import json
import math
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from jaxrec import metrics as M
from jaxrec.errors import JaxrecError
from jaxrec.paths import atomic_file

CTR_FIELDS = ("user", "item", "label", "history", "history_len")
CTR_METRICS = ("auc", "uauc", "gauc")
TOPK_METRICS = ("precision", "recall", "ndcg", "hit", "coverage")


def metric_names(kind: str, ks=()) -> list[str]:
  """The metrics an evaluation of `kind` reports (what early stopping may read): 'ctr': auc / uauc / gauc, overall
  and under 'warm/' and 'cold/'; 'topk': precision / recall / ndcg / hit / coverage @ each K."""
  if kind == "ctr":
    return [f"{g}{m}" for g in ("", "warm/", "cold/") for m in CTR_METRICS]
  return [f"{m}@{k}" for m in TOPK_METRICS for k in ks]


def split_arrays(split, fields: Sequence[str] = CTR_FIELDS) -> dict[str, np.ndarray]:
  """The model-input arrays of a Split (an object with those attributes)."""
  return {f: np.asarray(getattr(split, f)) for f in fields}


def _padded_batches(arrays: Mapping[str, np.ndarray], batch_size: int):
  """In-order batches, the last one padded (repeating row 0) to a single compiled shape; yields (batch, n_real)."""
  n = len(next(iter(arrays.values())))
  batch_size = max(1, min(batch_size, n))
  for lo in range(0, n, batch_size):
    idx = np.arange(lo, min(lo + batch_size, n))
    real = len(idx)
    if real < batch_size:
      idx = np.concatenate([idx, np.zeros(batch_size - real, np.int64)])
    yield {k: v[idx] for k, v in arrays.items()}, real


def collect_scores(score_batch: Callable[[dict], Any], arrays: Mapping[str, np.ndarray],
                   batch_size: int = 4096) -> np.ndarray:
  """[N] float64 scores of every row, in order."""
  out = [np.asarray(score_batch(batch), np.float64)[:real] for batch, real in _padded_batches(arrays, batch_size)]
  return np.concatenate(out) if out else np.zeros((0,), np.float64)


def row_groups(n: int, warm=None) -> dict[str, np.ndarray]:
  """{'all': every row} and, when `warm` [n] has both values, {'warm': its rows, 'cold': the others}: the groups a
  CTR evaluation breaks its metrics into (keys 'warm/...', 'cold/...')."""
  groups = {"all": np.ones(n, bool)}
  if warm is not None:
    warm = np.asarray(warm, bool)
    if warm.any() and (~warm).any():
      groups.update({"warm": warm, "cold": ~warm})
  return groups


def ctr_metrics(user, label, scores, warm=None, intervals: bool = False) -> dict[str, float]:
  """AUC / UAUC / GAUC overall and, when `warm` has both values, for the warm and cold rows separately; with
  `intervals`, each with its 95% bootstrap interval `<metric>_ci` = [lo, hi] (`metrics.ctr_intervals`: rows for
  AUC, users for UAUC / GAUC, 1,000 resamples, seed 0)."""
  user, label, scores = np.asarray(user), np.asarray(label), np.asarray(scores)
  out: dict[str, float] = {}
  with _finite_or_refused():
    for group, m in row_groups(len(label), warm).items():
      prefix = "" if group == "all" else f"{group}/"
      u = M.uauc(user[m], label[m], scores[m])
      g = M.gauc(user[m], label[m], scores[m])
      out.update({f"{prefix}auc": M.auc(label[m], scores[m]), f"{prefix}uauc": u.value, f"{prefix}gauc": g.value,
                  f"{prefix}uauc_users": u.n_users, f"{prefix}uauc_skipped": u.n_skipped,
                  f"{prefix}n": int(m.sum()), f"{prefix}pos_rate": float(label[m].mean()) if m.any() else math.nan})
      if intervals:
        out.update({f"{prefix}{k}_ci": list(v) for k, v in M.ctr_intervals(user[m], label[m], scores[m]).items()})
  return out


def paired_ctr(user, label, scores_a, scores_b, warm=None) -> dict[str, dict[str, dict[str, Any]]]:
  """Model B against model A on the same rows, per group ('all', and 'warm' / 'cold' when `warm` has both values):
  {group: {'auc' | 'uauc' | 'gauc': {'a', 'b', 'diff', 'diff_ci'}}} (`metrics.paired_ctr_differences`: paired
  bootstrap, rows for AUC, users for UAUC / GAUC, 1,000 resamples, seed 0), plus each group's row count 'n'."""
  user, label = np.asarray(user), np.asarray(label)
  a, b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
  with _finite_or_refused():
    return {g: {**M.paired_ctr_differences(user[m], label[m], a[m], b[m]), "n": int(m.sum())}
            for g, m in row_groups(len(label), warm).items()}


def evaluate_ctr(score_batch: Callable[[dict], Any], split, batch_size: int = 4096,
                 intervals: bool = False) -> dict[str, float]:
  """Scores every row of a Split and returns `ctr_metrics` (with the warm / cold breakdown if it has `warm`); a final
  evaluation (`intervals`) also keeps every row's score under `PER_ROW` (`per_row_scores`)."""
  scores = collect_scores(score_batch, split_arrays(split), batch_size)
  out = ctr_metrics(split.user, split.label, scores, getattr(split, "warm", None), intervals)
  if intervals:
    out[PER_ROW] = per_row_scores(split, scores)
  return out


def per_row_scores(split, scores) -> dict[str, np.ndarray]:
  """What `launch/compare.py` pairs CTR runs on: each row's user, item, label, warm flag (when the split has one)
  and the model's score, in the split's row order."""
  out = {"user": np.asarray(split.user, np.int64), "item": np.asarray(split.item, np.int64),
         "label": np.asarray(split.label, np.float64), "score": np.asarray(scores, np.float64)}
  if getattr(split, "warm", None) is not None:
    out["warm"] = np.asarray(split.warm, bool)
  return out


@contextlib.contextmanager
def _finite_or_refused():
  """The metrics refuse NaN / inf scores (`metrics.NonFiniteScores`): one line instead of a number."""
  try:
    yield
  except M.NonFiniteScores as e:
    raise JaxrecError(f"the model's scores are not finite ({e}); its parameters have diverged or overflowed") \
        from None


PER_USER = "_per_user"  # key of the per-user arrays in a top-K result (saved beside metrics.json, not in it)
PER_ROW = "_per_row"  # key of the per-row scores in a final CTR result (saved beside metrics.json, not in it)
SAVED = {PER_USER: "per_user", PER_ROW: "per_row"}  # result key → folder of <split>.npz files beside metrics.json


def topk_metrics(ranked, relevant, n_items: int, ks: Sequence[int], per_user: bool = False) -> dict[str, Any]:
  """precision / recall / ndcg / hit / coverage at each K; `ranked` from full-catalogue ranking, train masked. The
  means come from one pass of per-user terms per K (`metrics.per_user_at_k`), kept under `PER_USER` with
  `per_user`."""
  out, terms = {}, {}
  for k in ks:
    t = M.per_user_at_k(ranked, relevant, k)  # {metric@k: [U']}
    out.update({name: float(v.mean()) if len(v) else math.nan for name, v in t.items()})
    out[f"coverage@{k}"] = M.coverage_at_k(ranked, n_items, k)
    out[f"ndcg_se@{k}"] = M.standard_error(t[f"ndcg@{k}"])
    terms.update(t)
  if per_user:
    scored = np.array([np.any(np.asarray(r) > 0) for r in relevant], bool)  # the users every mean runs over
    out[PER_USER] = terms | {"scored": scored}
  return out


def sample_eval_users(split, n: int, seed: int):
  """The rows of `split` of n users drawn (seeded by seed + 1) from those with a positive row (n < 0: all of them;
  users with only negative rows are dropped either way, so they never add rankings to Coverage).

  Every family draws eval users here, so a CF baseline and a multi-scale run with the same config.seed and n are
  evaluated on the same users."""
  users = np.unique(np.asarray(split.user)[(np.asarray(split.label) > 0.5) & (np.asarray(split.user) > 0)])
  if 0 <= n < len(users):
    users = np.random.default_rng(seed + 1).choice(users, n, replace=False)
  return split.take(np.flatnonzero(np.isin(split.user, users)))


def sample_eval_splits(splits: Mapping[str, Any], n: int, seed: int) -> dict[str, Any]:
  """`sample_eval_users` applied to every split but 'train' (which keeps all its users): {name: sampled split}."""
  return {name: sample_eval_users(sp, n, seed) for name, sp in splits.items() if name != "train"}


def evaluate_topk(score_all_batch: Callable[[dict], Any], split, train_items: Mapping[int, np.ndarray],
                  n_items: int, ks: Sequence[int] = (10, 20), batch_size: int = 256,
                  per_user: bool = False) -> dict[str, float]:
  """Full-catalogue top-K evaluation of a split's positive rows, one query per user (user id != 0).

  A user's relevant items are its positive rows in `split`; its query row is its earliest one (so the history is
  the one before the held-out period); `train_items[user]` are masked from its ranking. With `per_user`, the result
  also holds `PER_USER`: the user ids and each metric's per-user terms (for paired comparisons).
  """
  user, label = np.asarray(split.user), np.asarray(split.label)
  order = np.lexsort((np.asarray(split.timestamp), user))
  users, first = np.unique(user[order], return_index=True)
  keep = users != 0
  users, rows = users[keep], order[first[keep]]
  relevant = [np.asarray(split.item)[(user == u) & (label > 0.5)] for u in users]
  arrays = {k: v[rows] for k, v in split_arrays(split).items()}
  kmax = max(ks)
  ranked = []
  for batch, real in _padded_batches(arrays, batch_size):
    scores = np.asarray(score_all_batch(batch))[:real]  # [b, n_items + 1]
    excl = [train_items.get(int(u), np.zeros(0, np.int64)) for u in batch["user"][:real]]
    with _finite_or_refused():
      ranked.append(M.top_k_from_scores(scores, kmax, excl))
  ranked = np.concatenate(ranked) if ranked else np.zeros((0, kmax), np.int64)
  out = topk_metrics(ranked, relevant, n_items, ks, per_user)
  out["n_users"] = len(users)
  if per_user:
    terms = out[PER_USER]
    terms["user"] = users[terms.pop("scored")].astype(np.int64)
  return out


def split_saved(results: Mapping[str, Mapping[str, Any]]) -> tuple[dict, dict]:
  """({split: metrics without the saved arrays}, {folder: {split: arrays}}) of final results: the per-user terms
  of a top-K evaluation (`per_user`), the per-row scores of a CTR one (`per_row`)."""
  metrics = {name: {k: v for k, v in m.items() if k not in SAVED} for name, m in results.items()}
  saved = {folder: {name: m[key] for name, m in results.items() if key in m} for key, folder in SAVED.items()}
  return metrics, {folder: arrays for folder, arrays in saved.items() if arrays}


def write_saved(root: pathlib.Path | str, saved: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]]) -> None:
  """`<root>/<folder>/<split>.npz` for `split_saved`'s arrays, each written atomically; read them with
  `read_arrays` (`np.load(path, allow_pickle=False)`)."""
  for folder, per_split in saved.items():
    for split, arrays in per_split.items():
      with atomic_file(pathlib.Path(root) / folder / f"{split}.npz", "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def read_arrays(path: pathlib.Path | str) -> dict[str, np.ndarray]:
  """The arrays `write_saved` wrote ({'user', 'ndcg@10', ...} or {'user', 'item', 'label', 'score', ...})."""
  with np.load(path, allow_pickle=False) as z:
    return {k: z[k] for k in z.files}


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
  """A plain-text table: one row per (split, group), one column per metric. `results` = {split name: metrics}."""
  rows, columns = [], []
  for split, metrics in results.items():
    groups: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
      if isinstance(value, Mapping):  # a nested record (an LLM run's comparison with its CF model): not a column
        continue
      group, _, name = key.rpartition("/")
      groups.setdefault(group or "all", {})[name] = value
      if name not in columns:
        columns.append(name)
    rows += [(split, group, vals) for group, vals in groups.items()]
  header = ["split", "group"] + columns
  body = [[s, g] + [_fmt(v.get(c)) for c in columns] for s, g, v in rows]
  widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
  line = lambda r: "  ".join(str(x).rjust(w) if i > 1 else str(x).ljust(w) for i, (x, w) in enumerate(zip(r, widths)))
  return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in body])


def _fmt(v) -> str:
  if v is None:
    return "-"
  if isinstance(v, (list, tuple)):  # an interval
    return "[" + ", ".join(_fmt(x) for x in v) + "]"
  if isinstance(v, (int, np.integer)):
    return str(int(v))
  return "nan" if math.isnan(v) else f"{v:.4f}"


def write_metrics(path: pathlib.Path | str, results: Mapping[str, Any]) -> None:
  """Atomic JSON (nan / inf → null: the file is always valid JSON)."""
  clean = _clean(results)
  with atomic_file(path, "w") as f:
    json.dump(clean, f, indent=2, sort_keys=True, allow_nan=False)


def _clean(x):
  if isinstance(x, Mapping):
    return {str(k): _clean(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_clean(v) for v in x]
  if isinstance(x, (np.generic, np.ndarray)):
    x = np.asarray(x).item()
  if isinstance(x, float) and not math.isfinite(x):
    return None
  return x
