"""Top-K evaluation of retrieval and re-ranking on held-out positives, with `jaxrec.evaluate`'s metrics.

Arms (each a dict of precision / recall / ndcg / hit / coverage @K from `jaxrec.evaluate.topk_metrics`):
  'cf'        the index's own top-K (with the exact index: the CF model's full-catalogue ranking)
  'rerank'    the scorer's top-K among the index's N candidates (retrieve-then-rerank)
  'llm_full'  the scorer's top-K over the whole catalogue (small catalogues only): the no-retrieval reference, so
              rerank vs llm_full is what retrieval costs
plus 'candidates': recall@N / hit@N of the N candidates (the most any re-ranker can reach).

Users and relevant items are chosen as `jaxrec.evaluate.evaluate_topk` does: one query per user (user id != 0) of
the split, its earliest row (history before the held-out period), relevant = the user's positive rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxrec import evaluate as ev
from jaxrec.errors import JaxrecError
from jaxrec.index import retrieval as R
from jaxrec.index.faiss_index import ItemIndex
from jaxrec.index.run import CFRun


def query_rows(split, max_users: int = -1) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
  """(users [U], query rows [U], relevant item ids per user) of a split, as `evaluate_topk` picks them."""
  user, label = np.asarray(split.user), np.asarray(split.label)
  order = np.lexsort((np.asarray(split.timestamp), user))
  users, first = np.unique(user[order], return_index=True)
  keep = users != 0
  users, rows = users[keep], order[first[keep]]
  if max_users > 0:
    users, rows = users[:max_users], rows[:max_users]
  relevant = [np.asarray(split.item)[(user == u) & (label > 0.5)] for u in users]
  return users, rows, relevant


def contexts(split, rows: np.ndarray) -> dict[str, np.ndarray]:
  """The scorer's per-user context at `rows`: user [U], history [U, H], history_label [U, H]."""
  out = {"user": np.asarray(split.user)[rows], "history": np.asarray(split.history)[rows]}
  labels = getattr(split, "history_label", None)
  out["history_label"] = (np.asarray(labels)[rows] if labels is not None else
                          np.where(out["history"] != 0, 1, -1).astype(np.int8))
  return out


def retrieval_recall(approx: np.ndarray, exact: np.ndarray) -> float:
  """Mean over queries of |approx ∩ exact| / |exact| (item id 0 = none is ignored): recall@N of an approximate
  index against the exact one."""
  vals = []
  for a, e in zip(approx, exact):
    e = e[e > 0]
    if len(e):
      vals.append(len(np.intersect1d(a[a > 0], e)) / len(e))
  return float(np.mean(vals)) if vals else float("nan")


def evaluate_pipeline(run: CFRun, index: ItemIndex, split, cfg, scorer: R.Scorer | None = None,
                      ks: Sequence[int] = (10, 20), full_catalogue: bool = False,
                      max_users: int = -1) -> dict[str, dict[str, float]]:
  """Metrics of each arm (see the module docstring) on `split`; `cfg` is the index section (retrieve.n etc.)."""
  r = cfg.retrieve
  ks = tuple(int(k) for k in ks)
  if max(ks) > r.n:
    raise JaxrecError(f"config.index.retrieve.n={r.n}: smaller than the largest evaluated K {max(ks)}")
  users, rows, relevant = query_rows(split, max_users)
  if not len(users):
    raise JaxrecError("evaluation split has no rows with a user id; top-K evaluation needs users")
  ctx = contexts(split, rows)
  seen = run.seen_items(r.exclude)
  exclude = [seen.get(int(u), np.zeros(0, np.int64)) for u in users]
  queries = run.query_vectors(users, ctx["history"], ctx["history_label"])
  cand = R.retrieve(index, queries, int(r.n), exclude, r.mode, int(r.query_batch_size))
  kmax = max(ks)
  out = {"cf": ev.topk_metrics(cand.items[:, :kmax], relevant, run.n_items, ks)}
  out["candidates"] = {k: v for k, v in ev.topk_metrics(cand.items, relevant, run.n_items, (int(r.n),)).items()
                       if k.startswith(("recall", "hit"))}
  if scorer is not None:
    rr = R.rerank(scorer, ctx, cand, kmax, int(r.llm_batch_size))
    out["rerank"] = ev.topk_metrics(rr.items, relevant, run.n_items, ks)
    if full_catalogue:
      fc = R.full_catalogue(scorer, ctx, run.n_items, exclude, kmax, int(r.llm_batch_size))
      out["llm_full"] = ev.topk_metrics(fc.items, relevant, run.n_items, ks)
  for arm in out.values():
    arm["n_users"] = len(users)
  return out
