"""The run-level entry points: build a run's index, open it (checked), recommend for a user or a new history.

  build_for_run(workdir, cfg)                     → writes <workdir>/index (launch/build_index.py)
  run = load_run(workdir); index, cfg = open_index(run)
  recommend(run, index, cfg, user=42)             → Candidates [1, K] (launch/recommend.py)
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np

from jaxrec.errors import JaxrecError
from jaxrec.index import faiss_index, retrieval as R, store
from jaxrec.index.config import validate
from jaxrec.index.run import CFRun


def build_for_run(workdir, cfg, seed: int = 0, progress: bool = False) -> tuple[faiss_index.ItemIndex, pathlib.Path]:
  """Indexes items 1..n of `<workdir>/embeddings/item.npy` and persists the index with the run."""
  validate(cfg)
  workdir = pathlib.Path(workdir)
  store.run_identity(workdir)  # fails early, in one line, on something that is not a finished CF run
  table = np.load(workdir / store.EMBEDDINGS, allow_pickle=False).astype(np.float32)  # [n_items + 1, D]
  if table.ndim != 2 or len(table) < 2:
    raise JaxrecError(f"{workdir / store.EMBEDDINGS}: expected [n_items + 1, D] item vectors, got {table.shape}")
  n_items = len(table) - 1
  index = faiss_index.build(table[1:], np.arange(1, n_items + 1, dtype=np.int64), cfg, seed, progress=progress)
  return index, store.save(workdir, index, n_items)


def open_index(run: CFRun, overrides: dict | None = None) -> tuple[faiss_index.ItemIndex, ml_collections.ConfigDict]:
  """(index, its config section with `overrides` applied) of a run loaded with `load_run`."""
  if run.workdir is None:
    raise JaxrecError("open_index: the run has no workdir (built in memory); use faiss_index.build")
  index, _ = store.load(run.workdir, run.item_table, run.n_items, overrides)
  return index, index.cfg


def recommend(run: CFRun, index: faiss_index.ItemIndex, cfg, *, user: int | None = None,
              history_items: np.ndarray | None = None, scorer: R.Scorer | None = None) -> R.Candidates:
  """Top-K for an existing `user` (its training items excluded) or a new user's `history_items` (those excluded).

  Without a scorer the list is the index's top-K; with one, the scorer's top-K of the index's top-N.
  """
  r = cfg.retrieve
  h = int(run.dataset.splits["train"].history.shape[1])
  if user is not None:
    history, labels = run.user_history(int(user), h)
    excluded = run.seen_items(r.exclude).get(int(user), np.zeros(0, np.int64))
    uid = int(user)
  elif history_items is not None:
    items = np.asarray(history_items, np.int64)[-h:]
    history = np.zeros(h, np.int64)
    history[h - len(items):] = items
    labels = np.where(history != 0, 1, -1).astype(np.int8)
    excluded, uid = np.unique(items), 0
  else:
    raise JaxrecError("recommend: pass --user=ID or --history='title; title; ...'")
  ctx = {"user": np.asarray([uid]), "history": history[None], "history_label": labels[None]}
  queries = run.query_vectors(ctx["user"], ctx["history"], ctx["history_label"])  # [1, D]
  cand = R.retrieve(index, queries, int(r.n) if scorer is not None else int(r.k), [excluded], r.mode)
  if scorer is None:
    return cand
  return R.rerank(scorer, ctx, cand, int(r.k), int(r.llm_batch_size))
