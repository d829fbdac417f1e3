"""The data side of the multi-scale recommender (`jaxrec.train.multiscale_task`): the CPU budget applied to the
dataset, the popularity prior's counts, centres fitted from a few histories, and the text batcher.

Budget knobs: config.budget.train_users / eval_users (users sampled, seeded; -1 = all), rows_per_user (each sampled
user's most recent train rows; -1 = all). Training rows are the train split's positives; each batch carries B
history texts, their B target items' texts and N random items' texts (seeded by (seed, epoch, batch), so a resumed
run sees the same negatives).
"""

from __future__ import annotations

import numpy as np

from jaxrec import evaluate as ev
from jaxrec.data import schema
from jaxrec.errors import JaxrecError
from jaxrec.multiscale import text as T


def _sample_users(users: np.ndarray, n: int, seed: int) -> np.ndarray:
  users = np.unique(users[users > 0])
  if n < 0 or n >= len(users):
    return users
  return np.sort(np.random.default_rng(seed).choice(users, n, replace=False))


def load_data(config):
  """The dataset with the budget applied: train = sampled users' positive rows; eval splits = sampled users'."""
  from jaxrec import data
  ds = data.load_dataset(config.data)
  b, seed = config.budget, int(config.seed)
  tr = ds.splits["train"]
  keep = tr.label > 0.5
  users = _sample_users(tr.user[keep], int(b.train_users), seed)
  rows = np.flatnonzero(keep & np.isin(tr.user, users))
  if int(b.rows_per_user) > 0:  # each user's most recent rows (longest histories)
    order = rows[np.lexsort((rows, tr.timestamp[rows], tr.user[rows]))]  # by user, time, row
    rank_from_end = np.zeros(len(order), np.int64)
    _, start, counts = np.unique(tr.user[order], return_index=True, return_counts=True)
    for s, c in zip(start, counts):
      rank_from_end[s:s + c] = np.arange(c)[::-1]
    rows = np.sort(order[rank_from_end < int(b.rows_per_user)])
  if not len(rows):
    raise JaxrecError("config.budget: no training rows left (check train_users / rows_per_user)")
  masked = schema.seen_items(ds)
  # Item frequencies of the whole training split (what the CF baselines see), for the popularity prior.
  ds.info["train_item_counts"] = schema.positive_item_counts(tr.item, tr.label, ds.n_items)
  ds.splits["train"] = tr.take(rows)
  ds.splits.update(ev.sample_eval_splits(ds.splits, int(b.eval_users), seed))
  ds.train_items_by_user = masked
  return ds


def fit_centers(model, params, train, table: T.ItemTokens, max_history: int, seed: int, n: int = 128):
  """Centres (`MultiScaleRec.fit_centers`) from n seeded training histories and n seeded catalogue items: one batch
  each, so the estimate costs about one training step."""
  if not model.center:
    return params
  rng = np.random.default_rng([seed, 11])
  rows = rng.choice(len(train), min(n, len(train)), replace=False)
  users = T.encode_histories(table, train.history[rows, -max_history:], table.user_length(max_history))
  items = T.encode_items(table, rng.choice(np.arange(1, model.n_items + 1), min(n, model.n_items), replace=False))
  return model.fit_centers(params, users, items)


class TextBatcher:
  """Shuffled training batches of tokenized history / target / negative texts (the loop's `train_data`)."""

  def __init__(self, split, table: T.ItemTokens, n_items: int, batch_size: int, n_negatives: int, max_history: int,
               seed: int):
    self.split, self.table, self.n_items = split, table, n_items
    self.batch_size, self.n_negatives, self.max_history, self.seed = min(batch_size, len(split)), n_negatives, \
        max_history, seed
    self.length = table.user_length(max_history)
    self.steps_per_epoch = len(split) // self.batch_size

  def make_batch(self, rows: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    sp = self.split
    batch = {"user": sp.user[rows], "pos_item": sp.item[rows]}
    batch.update(T.encode_histories(self.table, sp.history[rows, -self.max_history:], self.length))
    neg = rng.integers(1, self.n_items + 1, max(self.n_negatives, 1))[:self.n_negatives]
    batch.update({f"pos_{k}": v for k, v in T.encode_items(self.table, sp.item[rows]).items()})
    batch.update({f"neg_{k}": v for k, v in T.encode_items(self.table, neg).items()})
    batch["neg_item"] = neg.astype(np.int64)
    return batch

  def batches(self, epoch: int, start: int = 0):
    order = np.random.default_rng([self.seed, epoch]).permutation(len(self.split))
    for b in range(start, self.steps_per_epoch):
      rows = order[b * self.batch_size:(b + 1) * self.batch_size]
      yield self.make_batch(rows, np.random.default_rng([self.seed, epoch, b, 1]))


def log_prior(counts: np.ndarray) -> np.ndarray:
  """[I + 1] log p̂(i), add-one smoothed item frequencies (entry 0, padding, is 0: it is masked anyway)."""
  counts = np.asarray(counts, np.float64)
  out = np.log((counts + 1.0) / (counts[1:].sum() + len(counts) - 1))
  out[0] = 0.0
  return out.astype(np.float32)


def budget_summary(config, dataset, model) -> dict:
  return {"train_rows": len(dataset.splits["train"]), "train_users": int(len(np.unique(dataset.splits["train"].user))),
          "eval_users": {n: int(len(np.unique(s.user[s.label > 0.5]))) for n, s in dataset.splits.items()
                         if n != "train"},
          "layers": model.num_layers, "max_history": int(config.model.user.max_history), "scales": model.k}
