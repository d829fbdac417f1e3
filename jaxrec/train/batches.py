"""Deterministic minibatches from in-memory arrays, addressable by (epoch, batch index) so a run can resume."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np


class ArrayBatcher:
  """Shuffled fixed-size training batches of a dict of equal-length arrays.

  The order of epoch e is a permutation seeded by (seed, e), so `batches(e, start)` reproduces the exact batches a
  killed run would have seen from batch `start` on. The last partial batch is dropped (one compiled step shape).
  Any object with `steps_per_epoch` and `batches(epoch, start)` can replace this class in `loop.train`.
  """

  def __init__(self, arrays: Mapping[str, np.ndarray], batch_size: int, seed: int, shuffle: bool = True):
    lengths = {len(v) for v in arrays.values()}
    if len(lengths) != 1:
      raise ValueError(f"arrays differ in length: { {k: len(v) for k, v in arrays.items()} }")
    self.arrays = dict(arrays)
    self.n = lengths.pop()
    self.batch_size = min(batch_size, self.n)
    self.seed, self.shuffle = seed, shuffle
    self.steps_per_epoch = self.n // self.batch_size

  def batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
    order = np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
    for b in range(start, self.steps_per_epoch):
      idx = order[b * self.batch_size:(b + 1) * self.batch_size]
      yield {k: v[idx] for k, v in self.arrays.items()}

