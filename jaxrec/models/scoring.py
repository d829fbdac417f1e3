"""The one P(Yes) scorer: every place that scores prompts (a run's validation and final evaluation, the re-ranking
scorer, zero-shot `launch/score.py`) batches them here.

  scorer = PYesScorer(model, batch_size=16, place=lambda b: sharding.shard_batch(b, mesh))
  p_yes = scorer(params, n, collate, lengths)   # [N] float32, in row order

`collate(rows) -> model batch` renders the rows' prompts (a `PromptTable`'s collate, or the re-ranking scorer's
pair encoder). Rows go in length-bucketed order (`pipeline.plan_batches`, so a batch pads to its own longest
prompt) and every batch is padded to `batch_size` rows by repeating its last row, so one program is compiled per
padded prompt length; with `batch_size=None` all rows are one batch, unpadded (a user's re-ranking candidates).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxrec.data import pipeline
from jaxrec.models import prefix as prefix_lib
from jaxrec.models.llmrec import make_packed_score_fn, make_score_fn, make_shared_score_fn
from jaxrec.tree import update_digest


class PYesScorer:
  """P(Yes) of prompt rows with one jitted `make_score_fn(model)`."""

  def __init__(self, model, batch_size: int | None = None,
               place: Callable[[dict], Mapping] | None = None, data_shards: int = 1):
    self.model, self.batch_size, self.data_shards = model, batch_size, data_shards
    self.place = place or (lambda batch: batch)
    self.score_fn = jax.jit(make_score_fn(model))
    self.shared_fn = jax.jit(make_shared_score_fn(model))
    self.packed_fn = jax.jit(make_packed_score_fn(model))
    self.rows_per_s = float("nan")  # of the last call, for reports

  def __call__(self, params, n: int, collate: Callable[[np.ndarray], dict], lengths: np.ndarray | None = None,
               progress: bool = False, desc: str = "scoring", batch_size: int | None = None) -> np.ndarray:
    """[n] P(Yes) of rows 0..n-1 (`collate(rows)` builds their batch; `lengths` [n] buckets them; `batch_size`
    overrides the scorer's)."""
    out = np.zeros(n, np.float32)
    if n == 0:
      return out
    size = batch_size or self.batch_size or n
    plan = pipeline.plan_batches(n, size, 0, shuffle=False, lengths=lengths)
    start = time.perf_counter()
    with tqdm(total=n, desc=desc, unit="row", disable=not progress, dynamic_ncols=True, leave=False) as bar:
      pending = _Pending(out, bar)
      for rows in plan:
        padded = np.concatenate([rows, np.repeat(rows[-1:], size - len(rows))])  # one compiled batch size
        pending.push(rows, self.score_fn(params, self.place(collate(padded))))
      pending.flush()
    self.rows_per_s = n / max(time.perf_counter() - start, 1e-9)
    return out

  def shared(self, params, encodings, fields: Mapping[str, np.ndarray], pad_id: int, pad_multiple: int = 16,
             progress: bool = False, desc: str = "scoring", batch_size: int | None = None) -> np.ndarray:
    """[n] P(Yes) of unpadded `encodings` (`prompts.tokenize`) with `fields` (user, item, history, history_label
    [n, ...]), each group's common prefix run once (`jaxrec.models.prefix`); equal to `__call__`'s scores."""
    n = len(encodings)
    out = np.zeros(n, np.float32)
    if n == 0:
      return out
    size = batch_size or self.batch_size or n
    start = time.perf_counter()
    with tqdm(total=n, desc=desc, unit="row", disable=not progress, dynamic_ncols=True, leave=False) as bar:
      pending = _Pending(out, bar)
      for pre, suf, real in prefix_lib.batches(encodings, fields, size, pad_id, pad_multiple, self.data_shards):
        pending.push(real, self.shared_fn(params, self.place(pre), self.place(suf)))
      pending.flush()
    self.rows_per_s = n / max(time.perf_counter() - start, 1e-9)
    return out

  def packed(self, params, encodings, pad_id: int, pad_multiple: int = 16) -> np.ndarray:
    """[n] P(Yes) of one group's rows (one user and history: a user's re-ranking candidates) with their prefix run
    once and their suffixes packed several to a row (`prefix.pack`); text-only prompts."""
    start = time.perf_counter()
    pre, packed_batch, where = prefix_lib.pack(encodings, pad_id, pad_multiple)
    p_yes = np.asarray(self.packed_fn(params, self.place(pre), self.place(packed_batch)))  # [R, M]
    self.rows_per_s = len(encodings) / max(time.perf_counter() - start, 1e-9)
    return p_yes[where[:, 0], where[:, 1]].astype(np.float32)


class _Pending:
  """Reads each batch's scores back one batch late: jax dispatches asynchronously, so the host renders and pads
  batch i + 1 while batch i computes, instead of waiting for it first (measured: benchmarks/results/
  throughput.md)."""

  def __init__(self, out: np.ndarray, bar):
    self.out, self.bar, self.last = out, bar, None

  def push(self, rows: np.ndarray, scores) -> None:
    self.flush()
    self.last = (rows, scores)

  def flush(self) -> None:
    if self.last is not None:
      rows, scores = self.last
      self.out[rows] = np.asarray(scores)[:len(rows)]
      self.bar.update(len(rows))
      self.last = None


def row_keys(encodings, fields: Mapping[str, np.ndarray]) -> list[bytes]:
  """One digest per row of everything its score depends on: the prompt's token ids and slot positions and the row's
  `fields` (`prefix.row_fields`: user, item, history, history_label, which the CF source reads)."""
  keys = []
  for r, e in enumerate(encodings):
    h = hashlib.blake2b(digest_size=16)
    update_digest(h, (e, {f: v[r] for f, v in fields.items()}))
    keys.append(h.digest())
  return keys


class ScoreMemo:
  """Scores already computed with one set of parameters, by row content (`row_keys`). A final evaluation scores
  valid and then valid_small, which is a subset of it (ML-1M, ML-100K, Amazon-Book): its rows are read back
  instead of run again (scores depend on the batch a row ran in only by float rounding, ~1e-7)."""

  def __init__(self):
    self._params, self._scores = None, {}

  def missing(self, params, keys: list[bytes]) -> np.ndarray:
    """Indices of `keys` not scored with `params` (the same object; other parameters start the memo afresh)."""
    if params is not self._params:
      self._params, self._scores = params, {}
    return np.asarray([i for i, k in enumerate(keys) if k not in self._scores], np.int64)

  def fill(self, keys: list[bytes], rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Stores `scores` of `keys[rows]`, then returns every key's score [len(keys)]."""
    self._scores.update(zip((keys[r] for r in rows), np.asarray(scores, np.float32)))
    return np.fromiter((self._scores[k] for k in keys), np.float32, len(keys))
