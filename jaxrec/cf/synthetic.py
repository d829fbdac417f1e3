"""A small synthetic CTR dataset with a planted signal, in the shape of `jaxrec.data`'s Dataset / Split.

Users and items get random latent vectors; a row is positive when <user, item> + noise > 0. Each user's rows are in
time order and `history` holds the user's earlier positive items, so both id models (MF, LightGCN) and history
models (SASRec, DIN) can learn it. Used by tests and smoke runs; it is not a data loader.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Split:
  user: np.ndarray  # [N] int64
  item: np.ndarray  # [N] int64
  label: np.ndarray  # [N] float32
  timestamp: np.ndarray  # [N] int64
  history: np.ndarray  # [N, T] int64, left-padded with 0, most recent last
  history_len: np.ndarray  # [N] int32
  warm: np.ndarray  # [N] bool

  def __len__(self) -> int:
    return len(self.user)


@dataclasses.dataclass
class Dataset:
  splits: dict[str, Split]
  n_users: int
  n_items: int
  item_text: list[str]


def make_dataset(n_users: int = 200, n_items: int = 100, rows_per_user: int = 30, max_history: int = 10,
                 dim: int = 4, noise: float = 0.3, cold_frac: float = 0.1, seed: int = 0) -> Dataset:
  """Per user, the first 70% of rows (in time) go to 'train', the next 15% to 'valid', the rest to 'test'; the last
  `cold_frac` of users have no training rows (half valid, half test), so `warm` is False for them."""
  rng = np.random.default_rng(seed)
  user_vec = rng.normal(size=(n_users + 1, dim))
  item_vec = rng.normal(size=(n_items + 1, dim))
  parts = {"train": [], "valid": [], "test": []}
  for u in range(1, n_users + 1):
    items = rng.integers(1, n_items + 1, size=rows_per_user)
    labels = (np.einsum("d,nd->n", user_vec[u], item_vec[items]) + noise * rng.normal(size=rows_per_user)) > 0
    positives: list[int] = []
    for t, (i, y) in enumerate(zip(items, labels)):
      hist = positives[-max_history:]
      frac = t / rows_per_user
      if u > n_users * (1 - cold_frac):
        name = "valid" if frac < 0.5 else "test"
      else:
        name = "train" if frac < 0.7 else ("valid" if frac < 0.85 else "test")
      parts[name].append((u, i, float(y), u * 1000 + t, [0] * (max_history - len(hist)) + hist, len(hist)))
      if y:
        positives.append(int(i))
  train_users, train_items = {r[0] for r in parts["train"]}, {r[1] for r in parts["train"]}
  splits = {}
  for name, rows in parts.items():
    cols = list(zip(*rows))
    item = np.asarray(cols[1], np.int64)
    splits[name] = Split(
        user=np.asarray(cols[0], np.int64), item=item, label=np.asarray(cols[2], np.float32),
        timestamp=np.asarray(cols[3], np.int64), history=np.asarray(cols[4], np.int64),
        history_len=np.asarray(cols[5], np.int32), warm=np.isin(cols[0], list(train_users)) & np.isin(item, list(train_items)))
  return Dataset(splits=splits, n_users=n_users, n_items=n_items, item_text=[""] + [f"item {i}" for i in
                                                                                      range(1, n_items + 1)])
