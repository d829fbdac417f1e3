"""Evaluation metrics for CTR prediction and top-K recommendation: pure numpy functions.

This module imports nothing from jaxrec so that any codebase can check its numbers against it.

CTR metrics (`auc`, `uauc`, `gauc`) take one score per (user, item) row and a {0, 1} label; higher score = more
likely positive. All three are "higher is better", 0.5 = random.

Top-K metrics (`precision_at_k`, `recall_at_k`, `ndcg_at_k`, `hit_rate_at_k`, `coverage_at_k`) take each user's
ranked list of item ids. That list MUST come from FULL-CATALOGUE ranking with the user's training items (and the
padding id 0) masked out, as `top_k_from_scores` does; no sampled-candidate ranking is done here. All are "higher is
better". Users without any relevant item are left out of the per-user means (they have no defined recall/NDCG).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np


class PerUserAUC(NamedTuple):
  """A per-user AUC aggregate and how many users it covers."""

  value: float  # nan when no user qualifies
  n_users: int  # users that entered the mean
  n_skipped: int  # users left out (a single class, or a single row)


class NonFiniteScores(ValueError):
  """Scores with NaN or inf: they have no ranking, so no metric is defined on them."""


def finite_scores(scores: np.ndarray, metric: str) -> np.ndarray:
  """`scores` unchanged, or NonFiniteScores when any is NaN or infinite: a metric computed from them would be an
  arbitrary number (a diverged model would look like a random one)."""
  bad = ~np.isfinite(scores)
  if bad.any():
    first = np.unravel_index(int(np.argmax(bad)), scores.shape)
    raise NonFiniteScores(f"{metric}: {int(bad.sum())} of {scores.size} scores are not finite (first at index "
                     f"{first[0] if len(first) == 1 else first}: {scores[first]}); no metric is defined on them")
  return scores


def auc(labels, scores) -> float:
  """Global ROC AUC (higher is better, 0.5 = random); ties between a positive and a negative count 1/2.

  AUC = (sum of ranks of positives - P(P+1)/2) / (P * N), with average ranks for ties (Mann-Whitney U), which equals
  P(score_pos > score_neg) + 1/2 P(score_pos == score_neg) over all positive/negative pairs. Returns nan if `labels`
  has only one class. Matches `sklearn.metrics.roc_auc_score`.
  """
  labels = np.asarray(labels).reshape(-1) > 0.5
  scores = finite_scores(np.asarray(scores, dtype=np.float64).reshape(-1), "auc")
  if labels.shape != scores.shape:
    raise ValueError(f"auc: labels {labels.shape} and scores {scores.shape} differ in length")
  n_pos = int(labels.sum())
  n_neg = labels.size - n_pos
  if n_pos == 0 or n_neg == 0:
    return float("nan")
  ranks = _average_ranks(scores)
  u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
  return float(u / (n_pos * n_neg))


def _average_ranks(x: np.ndarray) -> np.ndarray:
  """1-based ranks of `x` in increasing order, tied values getting the mean of their ranks."""
  order = np.argsort(x, kind="mergesort")
  xs = x[order]
  # Boundaries of runs of equal values in the sorted array.
  starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
  ends = np.r_[starts[1:], xs.size]  # exclusive
  run_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
  ranks = np.empty(x.size, dtype=np.float64)
  ranks[order] = np.repeat(run_rank, ends - starts)
  return ranks


def _per_user_auc(users, labels, scores):
  """Yields (n_rows, n_pos, auc) per user, auc = nan for users with a single class."""
  users = np.asarray(users).reshape(-1)
  labels = np.asarray(labels).reshape(-1) > 0.5
  scores = finite_scores(np.asarray(scores, dtype=np.float64).reshape(-1), "per-user AUC")
  if not users.shape == labels.shape == scores.shape:
    raise ValueError(f"users {users.shape}, labels {labels.shape}, scores {scores.shape} differ in length")
  order = np.argsort(users, kind="mergesort")
  users, labels, scores = users[order], labels[order], scores[order]
  bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
  out = []
  for lo, hi in zip(bounds[:-1], bounds[1:]):
    out.append((hi - lo, int(labels[lo:hi].sum()), auc(labels[lo:hi], scores[lo:hi])))
  return out


def uauc(users, labels, scores) -> PerUserAUC:
  """CoLLM's user-averaged AUC (higher is better): the UNWEIGHTED mean of per-user AUC.

  uAUC = (1/|U'|) * sum_{u in U'} AUC_u, where U' = users with at least one positive and one negative row. Users with
  a single row or a single class are skipped (as CoLLM's `uAUC_me` does) and counted in `n_skipped`. Ties inside a
  user count 1/2, as in sklearn. Rows are grouped by the `users` value as given (0 is a user like any other).
  """
  per_user = _per_user_auc(users, labels, scores)
  aucs = [a for _, _, a in per_user if not np.isnan(a)]
  value = float(np.mean(aucs)) if aucs else float("nan")
  return PerUserAUC(value, len(aucs), len(per_user) - len(aucs))


def gauc(users, labels, scores, weight: str = "positives") -> PerUserAUC:
  """Group AUC (higher is better): per-user AUC averaged with per-user weights, users with one class skipped.

  GAUC = sum_{u in U'} w_u * AUC_u / sum_{u in U'} w_u over users U' having both classes.
  weight='positives' (default) is RecBole's `GAUC` (recbole/evaluator/metrics.py weights `user_auc * pos_len_list`,
  i.e. w_u = the user's number of positive rows); weight='samples' gives w_u = the user's number of rows (the
  definition in DIN and most CTR papers). Ties count 1/2.
  """
  if weight not in ("positives", "samples"):
    raise ValueError(f"gauc: weight must be 'positives' or 'samples', got {weight!r}")
  per_user = _per_user_auc(users, labels, scores)
  kept = [(n, p, a) for n, p, a in per_user if not np.isnan(a)]
  if not kept:
    return PerUserAUC(float("nan"), 0, len(per_user))
  w = np.array([p if weight == "positives" else n for n, p, _ in kept], dtype=np.float64)
  a = np.array([a for _, _, a in kept])
  return PerUserAUC(float((w * a).sum() / w.sum()), len(kept), len(per_user) - len(kept))


# ---------------------------------------------------------------------------------------------------------------
# Top-K metrics.


def top_k_from_scores(scores, k: int, exclude: Sequence | None = None) -> np.ndarray:
  """Full-catalogue top-K: ids of the K highest-scoring items per user, excluding padding id 0 and `exclude`.

  Args:
    scores: [U, n_items + 1] scores over the whole catalogue; column j is item id j, column 0 is padding.
    k: list length.
    exclude: per user, the item ids to mask (the user's training items), as a sequence of U int arrays.

  Returns:
    [U, k] int64 item ids, best first (ties broken by lower item id).
  """
  scores = np.array(scores, dtype=np.float64, copy=True)  # [U, I+1]
  finite_scores(scores[:, 1:], "top_k_from_scores")  # column 0 is padding, masked below
  scores[:, 0] = -np.inf
  if exclude is not None:
    for u, items in enumerate(exclude):
      items = np.asarray(items, dtype=np.int64)
      scores[u, items[items > 0]] = -np.inf
  k = min(k, scores.shape[1] - 1)
  part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # [U, k] unordered
  part_scores = np.take_along_axis(scores, part, axis=1)
  order = np.lexsort((part, -part_scores), axis=1)
  return np.take_along_axis(part, order, axis=1).astype(np.int64)


def _hits(ranked, relevant, k: int):
  """hits [U', k] bool and |relevant| [U'] for users with at least one relevant item (id 0 is never relevant)."""
  ranked = np.asarray(ranked)
  if ranked.ndim != 2 or ranked.shape[1] < k:
    raise ValueError(f"ranked must be [U, >= {k}], got {ranked.shape}")
  if len(relevant) != ranked.shape[0]:
    raise ValueError(f"ranked has {ranked.shape[0]} users but relevant has {len(relevant)}")
  hits, n_rel = [], []
  for row, rel in zip(ranked[:, :k], relevant):
    rel = np.unique(np.asarray(rel, dtype=np.int64))
    rel = rel[rel > 0]
    if rel.size == 0:
      continue
    hits.append(np.isin(row, rel))
    n_rel.append(rel.size)
  return np.array(hits, dtype=bool).reshape(-1, k), np.array(n_rel, dtype=np.int64)


def precision_at_k(ranked, relevant, k: int) -> float:
  """Precision@K (higher is better) = mean over users of |top-K ∩ relevant| / K.

  `ranked`: [U, >=K] ids from full-catalogue ranking with training items masked; `relevant`: per user the held-out
  item ids. Users with no relevant item are left out.
  """
  hits, _ = _hits(ranked, relevant, k)
  return float(hits.sum(1).mean() / k) if len(hits) else float("nan")


def recall_at_k(ranked, relevant, k: int) -> float:
  """Recall@K (higher is better) = mean over users of |top-K ∩ relevant| / |relevant|.

  Same inputs as `precision_at_k` (full-catalogue ranking, training items masked).
  """
  hits, n_rel = _hits(ranked, relevant, k)
  return float((hits.sum(1) / n_rel).mean()) if len(hits) else float("nan")


def ndcg_at_k(ranked, relevant, k: int) -> float:
  """NDCG@K with binary relevance (higher is better), averaged over users.

  DCG = sum_{i=1..K} rel_i / log2(i + 1); IDCG = sum_{i=1..min(|relevant|, K)} 1 / log2(i + 1), so a user with fewer
  relevant items than K can still reach 1. Same inputs as `precision_at_k` (full-catalogue ranking, training items
  masked).
  """
  per_user = ndcg_per_user(ranked, relevant, k)
  return float(per_user.mean()) if len(per_user) else float("nan")


def ndcg_per_user(ranked, relevant, k: int) -> np.ndarray:
  """[U'] NDCG@K of each user with at least one relevant item (the terms `ndcg_at_k` averages)."""
  hits, n_rel = _hits(ranked, relevant, k)
  if not len(hits):
    return np.zeros((0,), np.float64)
  discount = 1.0 / np.log2(np.arange(2, k + 2))  # [k]
  dcg = (hits * discount).sum(1)  # [U']
  idcg = np.cumsum(discount)[np.minimum(n_rel, k) - 1]  # [U']
  return dcg / idcg


def per_user_at_k(ranked, relevant, k: int) -> dict[str, np.ndarray]:
  """The per-user terms that precision / recall / ndcg / hit_rate @K average: {'precision@k', 'recall@k', 'ndcg@k',
  'hit@k'}, each [U'] over the users with at least one relevant item (in `ranked`'s order), for paired comparisons
  of two models on the same users."""
  hits, n_rel = _hits(ranked, relevant, k)
  n_hit = hits.sum(1).astype(np.float64)
  return {f"precision@{k}": n_hit / k, f"recall@{k}": n_hit / np.maximum(n_rel, 1),
          f"ndcg@{k}": ndcg_per_user(ranked, relevant, k), f"hit@{k}": (n_hit > 0).astype(np.float64)}


def bootstrap_interval(n: int, statistic, n_resamples: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
  """Percentile bootstrap interval: draw n of the n units with replacement `n_resamples` times (a fixed seed),
  compute `statistic(indices)` on each draw, return the (1 - level) / 2 and (1 + level) / 2 quantiles of the
  finite results. (nan, nan) for fewer than 2 units."""
  if n < 2:
    return float("nan"), float("nan")
  rng = np.random.default_rng(seed)
  stats = np.empty(n_resamples)
  for r in range(n_resamples):  # one resample at a time: memory stays O(n) for 100k-row splits
    stats[r] = statistic(rng.integers(0, n, n))
  stats = stats[np.isfinite(stats)]
  if not len(stats):
    return float("nan"), float("nan")
  lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
  return float(lo), float(hi)


def bootstrap_ci(values, n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
  """`bootstrap_interval` of a mean over `values` (per-user terms; for a paired comparison the differences
  a_u - b_u)."""
  values = np.asarray(values, np.float64)
  return bootstrap_interval(len(values), lambda idx: values[idx].mean(), n_resamples, seed, level)


def ctr_intervals(users, labels, scores, n_resamples: int = 1000, seed: int = 0,
                  level: float = 0.95) -> dict[str, tuple[float, float]]:
  """95% bootstrap intervals of `auc` (rows resampled), `uauc` and `gauc` (users resampled: the mean, unweighted or
  weighted by positives, of the resampled users' AUCs; users with one class are left out, as the point values do)."""
  labels, scores = np.asarray(labels).reshape(-1) > 0.5, np.asarray(scores, np.float64).reshape(-1)
  kept = [(p, a) for _, p, a in _per_user_auc(users, labels, scores) if not np.isnan(a)]
  pos = np.array([p for p, _ in kept], np.float64)
  aucs = np.array([a for _, a in kept], np.float64)
  return {
      "auc": bootstrap_interval(len(labels), lambda idx: auc(labels[idx], scores[idx]), n_resamples, seed, level),
      "uauc": bootstrap_interval(len(aucs), lambda idx: aucs[idx].mean(), n_resamples, seed, level),
      "gauc": bootstrap_interval(len(aucs), lambda idx: (pos[idx] * aucs[idx]).sum() / pos[idx].sum(), n_resamples,
                                 seed, level),
  }


def paired_ctr_differences(users, labels, scores_a, scores_b, n_resamples: int = 1000, seed: int = 0,
                           level: float = 0.95) -> dict[str, dict[str, Any]]:
  """Model B against model A on the same rows: {'auc' | 'uauc' | 'gauc': {'a', 'b', 'diff' = b − a, 'diff_ci'}}.

  The interval is the percentile bootstrap of the difference with both models on each draw's rows (AUC: rows
  resampled) or users (UAUC / GAUC: users with both classes resampled; their per-user AUCs differenced), so the
  variation both share cancels: paired intervals are far narrower than two separate ones. Same draws as
  `ctr_intervals` (`bootstrap_interval`, fixed seed)."""
  labels = np.asarray(labels).reshape(-1) > 0.5
  a, b = (np.asarray(s, np.float64).reshape(-1) for s in (scores_a, scores_b))
  per_a, per_b = _per_user_auc(users, labels, a), _per_user_auc(users, labels, b)
  kept = [(p, x, y) for (_, p, x), (_, _, y) in zip(per_a, per_b) if not (np.isnan(x) or np.isnan(y))]
  pos, ua, ub = (np.array([k[i] for k in kept], np.float64) for i in range(3))
  gauc_of = lambda v, idx: (pos[idx] * v[idx]).sum() / pos[idx].sum()
  out = {"auc": (auc(labels, a), auc(labels, b),
                 bootstrap_interval(len(labels), lambda idx: auc(labels[idx], b[idx]) - auc(labels[idx], a[idx]),
                                    n_resamples, seed, level)),
         "uauc": (ua.mean() if len(kept) else np.nan, ub.mean() if len(kept) else np.nan,
                  bootstrap_interval(len(kept), lambda idx: (ub[idx] - ua[idx]).mean(), n_resamples, seed, level)),
         "gauc": (gauc_of(ua, slice(None)) if len(kept) else np.nan, gauc_of(ub, slice(None)) if len(kept) else np.nan,
                  bootstrap_interval(len(kept), lambda idx: gauc_of(ub, idx) - gauc_of(ua, idx), n_resamples, seed,
                                     level))}
  return {k: {"a": float(va), "b": float(vb), "diff": float(vb - va), "diff_ci": list(ci)}
          for k, (va, vb, ci) in out.items()}


def standard_error(values) -> float:
  """Standard error of a mean over users = sd(values, ddof=1) / sqrt(n): how far a metric averaged over this many
  users moves from one sample of users to another (nan for n < 2)."""
  values = np.asarray(values, np.float64)
  return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def hit_rate_at_k(ranked, relevant, k: int) -> float:
  """HitRate@K (higher is better) = fraction of users with at least one relevant item in their top-K.

  Same inputs as `precision_at_k` (full-catalogue ranking, training items masked).
  """
  hits, _ = _hits(ranked, relevant, k)
  return float(hits.any(1).mean()) if len(hits) else float("nan")


def coverage_at_k(ranked, n_items: int, k: int) -> float:
  """Coverage@K (higher = more diverse) = |union over users of top-K| / n_items; ids 1..n_items, 0 is ignored.

  Counts every row of `ranked` (users without held-out items too); rankings must be full-catalogue with training
  items masked, as for the other top-K metrics.
  """
  ranked = np.asarray(ranked)[:, :k]
  items = np.unique(ranked)
  return float(np.count_nonzero((items > 0) & (items <= n_items)) / n_items)
