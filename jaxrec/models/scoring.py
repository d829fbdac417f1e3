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

import time
from collections.abc import Callable, Mapping

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxrec.data import pipeline
from jaxrec.models import prefix as prefix_lib
from jaxrec.models.llmrec import make_score_fn, make_shared_score_fn


class PYesScorer:
  """P(Yes) of prompt rows with one jitted `make_score_fn(model)`."""

  def __init__(self, model, batch_size: int | None = None,
               place: Callable[[dict], Mapping] | None = None, data_shards: int = 1):
    self.model, self.batch_size, self.data_shards = model, batch_size, data_shards
    self.place = place or (lambda batch: batch)
    self.score_fn = jax.jit(make_score_fn(model))
    self.shared_fn = jax.jit(make_shared_score_fn(model))
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
      for rows in plan:
        real = len(rows)
        padded = np.concatenate([rows, np.repeat(rows[-1:], size - real)])  # one compiled batch size
        out[rows] = np.asarray(self.score_fn(params, self.place(collate(padded))))[:real]
        bar.update(real)
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
      for pre, suf, real in prefix_lib.batches(encodings, fields, size, pad_id, pad_multiple,
                                                      self.data_shards):
        p_yes = np.asarray(self.shared_fn(params, self.place(pre), self.place(suf)))
        out[real] = p_yes[:len(real)]
        bar.update(len(real))
    self.rows_per_s = n / max(time.perf_counter() - start, 1e-9)
    return out
