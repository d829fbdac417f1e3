"""Row samples of a split: the training budget (`max_train_rows`), the early-stopping sample (`max_eval_rows`) and a
test config's cap on final figures (`final_eval_rows`). numpy only, so the CF family can use it without the readers."""

from __future__ import annotations

import numpy as np


def cap_rows(n: int, cap: int, seed: int) -> np.ndarray | None:
  """Rows kept under a budget cap (-1 = all): a seeded subset, in original order; None when nothing is cut."""
  if cap is None or cap < 0 or cap >= n:
    return None
  return np.sort(np.random.default_rng(seed).permutation(n)[:cap])


def sample_rows(split, cap: int, seed: int):
  """`cap` rows of `split` (-1 or more than it has: all of it, the same object), the first `cap` of a permutation
  seeded by `seed`, kept in their original order; the same rows every time for the same (cap, seed, split)."""
  keep = cap_rows(len(split), cap, seed)
  return split if keep is None else split.take(keep)


def validation_sample(data_cfg, split):
  """The rows of an evaluation split that validation during training reads: `data_cfg.max_eval_rows` of them."""
  return sample_rows(split, data_cfg.get("max_eval_rows", -1), data_cfg.get("seed", 0))
