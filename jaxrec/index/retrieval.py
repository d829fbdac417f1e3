"""Retrieve-then-rerank: top-N candidates from the index with the user's training items excluded, then top-K by a
scorer (the LLM's P(Yes), or any pair scorer).

Exclusion is exact whatever the index: in 'filter' mode a user with E excluded items asks the index for N + E rows
(users are grouped by that size, rounded up to a power of two, so one heavy user does not slow down the rest) and
drops the excluded ones afterwards; since at most E of the N + E are excluded, N remain whenever the index returns
as many as asked (the exact index always does; IVF / HNSW may return fewer, then the list is padded with item 0,
score -inf). In 'selector' mode the index itself skips them (a Faiss IDSelector, one query at a time).

A scorer is `scorer(pairs) -> [M] scores` where pairs = {'user' [M], 'item' [M], 'history' [M, H],
'history_label' [M, H]}: one row per (user, candidate item).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from jaxrec.index.faiss_index import ItemIndex

Scorer = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclasses.dataclass
class Candidates:
  items: np.ndarray  # [B, N] int64 item ids, best first; 0 = none (the index found fewer)
  scores: np.ndarray  # [B, N] float32 CF inner products; -inf where items == 0


def _order(items: np.ndarray, scores: np.ndarray, n: int) -> Candidates:
  """The n best per row by (score desc, item id asc: `jaxrec.metrics.top_k_from_scores`'s tie rule)."""
  order = np.lexsort((np.where(items > 0, items, np.iinfo(np.int64).max), -scores), axis=1)[:, :n]
  items, scores = np.take_along_axis(items, order, 1), np.take_along_axis(scores, order, 1)
  if items.shape[1] < n:  # a catalogue smaller than n after exclusion
    pad = n - items.shape[1]
    items = np.pad(items, ((0, 0), (0, pad)))
    scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
  return Candidates(np.where(np.isfinite(scores), items, 0), scores.astype(np.float32))


def _rows_of(index: ItemIndex, item_ids: np.ndarray) -> np.ndarray:
  """Faiss rows of catalogue item ids (ids not in the index are dropped)."""
  order = np.argsort(index.item_ids)
  pos = np.searchsorted(index.item_ids, item_ids, sorter=order)
  pos = np.clip(pos, 0, len(order) - 1)
  rows = order[pos]
  return rows[index.item_ids[rows] == item_ids]


def retrieve(index: ItemIndex, queries: np.ndarray, n: int, exclude: Sequence[np.ndarray] | None = None,
             mode: str = "filter", batch_size: int = 1024) -> Candidates:
  """Top-n items per query [B, D] by inner product, never returning the query's `exclude[b]` item ids."""
  queries = np.ascontiguousarray(queries, np.float32)
  b = len(queries)
  exclude = [np.zeros(0, np.int64)] * b if exclude is None else [np.asarray(e, np.int64) for e in exclude]
  if mode == "selector":
    return _retrieve_selector(index, queries, n, exclude)
  items = np.zeros((b, n), np.int64)
  scores = np.full((b, n), -np.inf, np.float32)
  sizes = np.array([len(e) for e in exclude], np.int64)
  fetch = np.minimum(n + sizes, index.ntotal)
  bucket = np.minimum(2 ** np.ceil(np.log2(np.maximum(fetch, 1))).astype(np.int64), index.ntotal)  # [B]
  for k in np.unique(bucket):
    members = np.flatnonzero(bucket == k)
    for lo in range(0, len(members), batch_size):
      rows_b = members[lo:lo + batch_size]
      rows = index.search_rows(queries[rows_b], int(k))  # [b, k] Faiss rows, -1 = none
      got = np.where(rows >= 0, index.item_ids[np.maximum(rows, 0)], 0)  # [b, k] item ids
      for j, u in enumerate(rows_b):
        if len(exclude[u]):
          rows[j, np.isin(got[j], exclude[u])] = -1
      s = index.exact_scores(queries[rows_b], rows)  # [b, k], -inf at dropped rows
      c = _order(np.where(rows >= 0, got, 0), s, n)
      items[rows_b], scores[rows_b] = c.items, c.scores
  return Candidates(items, scores)


def _retrieve_selector(index: ItemIndex, queries: np.ndarray, n: int, exclude: Sequence[np.ndarray]) -> Candidates:
  items = np.zeros((len(queries), n), np.int64)
  scores = np.full((len(queries), n), -np.inf, np.float32)
  for u, q in enumerate(queries):
    params, _refs = index.selector_params(_rows_of(index, exclude[u]))
    rows = index.search_rows(q[None], n, params)  # [1, n]
    got = np.where(rows >= 0, index.item_ids[np.maximum(rows, 0)], 0)
    c = _order(got, index.exact_scores(q[None], rows), n)
    items[u], scores[u] = c.items[0], c.scores[0]
  return Candidates(items, scores)


def score_candidates(scorer: Scorer, context: Mapping[str, np.ndarray], items: np.ndarray,
                     batch_size: int) -> np.ndarray:
  """[B, N] scorer outputs for each user's candidates [B, N] (-inf at item 0); context arrays have B rows.

  Pairs go to the scorer in batches of exactly `batch_size` (the last padded by repeating its first pair), so a
  jitted scorer compiles once.
  """
  b, n = items.shape
  user_idx, cand_idx = np.nonzero(items > 0)  # real pairs only
  out = np.full((b, n), -np.inf, np.float32)
  if getattr(scorer, "batches_itself", False):
    # the LLM scorer takes one user's candidates at once: their shared prompt prefix runs once and their suffixes
    # are packed (`jaxrec.models.prefix`); it pads its own batches to a few shapes
    for u in np.unique(user_idx):
      c = cand_idx[user_idx == u]
      pairs = {k: np.repeat(np.asarray(v)[u:u + 1], len(c), axis=0) for k, v in context.items()}
      pairs["item"] = items[u, c]
      out[u, c] = np.asarray(scorer(pairs), np.float32)
    return out
  for lo in range(0, len(user_idx), batch_size):
    u, c = user_idx[lo:lo + batch_size], cand_idx[lo:lo + batch_size]
    real = len(u)
    if real < batch_size:
      u, c = np.r_[u, np.full(batch_size - real, u[0])], np.r_[c, np.full(batch_size - real, c[0])]
    pairs = {k: np.asarray(v)[u] for k, v in context.items()}
    pairs["item"] = items[u, c]
    s = np.asarray(scorer(pairs), np.float32).reshape(-1)[:real]
    out[u[:real], c[:real]] = s
  return out


def rerank(scorer: Scorer, context: Mapping[str, np.ndarray], candidates: Candidates, k: int,
           batch_size: int) -> Candidates:
  """Top-k of each user's candidates by the scorer; ties keep the CF order. Returned scores are the scorer's."""
  s = score_candidates(scorer, context, candidates.items, batch_size)  # [B, N]
  order = np.argsort(-s, axis=1, kind="stable")[:, :k]  # stable: equal scores stay in CF (candidate) order
  items = np.take_along_axis(candidates.items, order, 1)
  scores = np.take_along_axis(s, order, 1)
  return Candidates(np.where(np.isfinite(scores), items, 0), scores)


def full_catalogue(scorer: Scorer, context: Mapping[str, np.ndarray], n_items: int,
                   exclude: Sequence[np.ndarray], k: int, batch_size: int) -> Candidates:
  """Top-k by scoring every catalogue item (minus `exclude`) with the scorer: the no-retrieval reference."""
  b = len(next(iter(context.values())))
  items = np.tile(np.arange(1, n_items + 1, dtype=np.int64), (b, 1))  # [B, I]
  for u, e in enumerate(exclude):
    e = np.asarray(e, np.int64)
    items[u, e[(e > 0) & (e <= n_items)] - 1] = 0
  s = score_candidates(scorer, context, items, batch_size)  # [B, I]
  return _order(items, s, k)
