"""The evaluation side of the multi-scale recommender (`jaxrec.train.multiscale_task`): full-catalogue top-K through
`jaxrec.evaluate.evaluate_topk` (the user's training items masked, one query per user: its earliest row of the
split), item vectors computed once per evaluation and reused while the trainable params are unchanged, and the
most-popular reference every figure is read against.
"""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec import evaluate as ev
from jaxrec.tree import update_digest
from jaxrec.multiscale import text as T
from jaxrec.train.multiscale_data import log_prior


def make_item_table(model, table: T.ItemTokens, chunk: int = 256):
  """params → [n_items + 1, d] item vectors (row 0 = padding, zeros), one compiled chunk shape."""
  encode = jax.jit(lambda params, ids, mask, seg, items: model.encode_items(params, ids, mask, seg, items))
  ids = np.arange(1, model.n_items + 1)
  chunk = min(chunk, len(ids))
  pad = (-len(ids)) % chunk
  ids = np.concatenate([ids, np.ones(pad, np.int64)])

  def item_table(params):
    out = []
    for lo in range(0, len(ids), chunk):
      enc = T.encode_items(table, ids[lo:lo + chunk])
      out.append(np.asarray(encode(params, enc["input_ids"], enc["attention_mask"], enc["segment"],
                                   ids[lo:lo + chunk])))
    v = np.concatenate(out)[:model.n_items]
    return np.concatenate([np.zeros((1, v.shape[1]), v.dtype), v])

  return item_table


def _fingerprint(params) -> str:
  """Digest of every leaf but the frozen backbone's (adapters, heads, centres: small), to reuse an item table."""
  h = hashlib.sha1()
  update_digest(h, {k: v for k, v in params.items() if k != "llm"})
  return h.hexdigest()


class Evaluator:
  """`evaluator(params, split)` → top-K metrics; `evaluator.items(params)` → the [n_items + 1, d] item vectors. The
  item table, the costliest part (every item text through the decoder), is reused while the trainable params are
  unchanged: the final evaluation of the best params usually repeats the last validation's, and the export reads
  the final evaluation's."""

  def __init__(self, config, dataset, model, table: T.ItemTokens):
    self.config, self.dataset, self.table = config, dataset, table
    self._compute_items = make_item_table(model, table, int(config.get("eval_item_chunk", 256)))
    self._cache: dict[str, np.ndarray] = {}
    self._score = jax.jit(model.score_all)
    self._prior = jnp.asarray(log_prior(dataset.info["train_item_counts"]))

  def items(self, params) -> np.ndarray:
    key = _fingerprint(params)
    if key not in self._cache:
      self._cache.clear()
      self._cache[key] = self._compute_items(params)
    return self._cache[key]

  def __call__(self, params, split, per_user: bool = False) -> dict:
    items = jnp.asarray(self.items(params))
    h = int(self.config.model.user.max_history)
    length = self.table.user_length(h)

    def score_all_batch(batch):
      enc = T.encode_histories(self.table, batch["history"][:, -h:], length)
      return self._score(params, enc, items, self._prior)

    return ev.evaluate_topk(score_all_batch, split, self.dataset.train_items_by_user, self.dataset.n_items,
                            tuple(self.config.eval.ks), int(self.config.get("eval_batch_size", 64)), per_user)


def most_popular(config, dataset, split) -> dict:
  """The reference every top-K figure here must be read against: items ranked by training frequency alone."""
  prior = log_prior(dataset.info["train_item_counts"])
  return ev.evaluate_topk(lambda b: np.broadcast_to(prior, (len(b["user"]), len(prior))), split,
                          dataset.train_items_by_user, dataset.n_items, tuple(config.eval.ks))
