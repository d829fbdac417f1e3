"""Non-neural top-K references fitted in closed form from the training interactions: most popular, ItemKNN (cosine)
and EASE (Steck, 2019). They anchor what a strong simple model reaches on a split.

Each is an inner-product model over the item space: the user vector is the user's training row x_u ∈ {0, 1}^(I+1),
an item's vector is a column of an item-item matrix W [I + 1, I + 1], and score(u, i) = x_u · W[:, i]:
  pop      W[:, i] = n_i / max_j n_j for every row (every user with a training item gets popularity order)
  itemknn  W = cosine similarity of item columns of X, s_ij = x_iᵀx_j / (‖x_i‖ ‖x_j‖ + shrink), each column keeping
           its `neighbours` largest entries (RecBole's ItemKNN), diagonal 0
  ease     W = I − P · diag(1 / diag(P)), P = (XᵀX + λI)⁻¹ (so diag(W) = 0), EASE's closed form
X and W live in the `consts` collection (data, not parameters), so the model has nothing to train: its configs
have no stages and `launch/train.py` goes straight to evaluation.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxrec.cf import base

KINDS = ("pop", "itemknn", "ease")


def interactions(users, items, labels, n_users: int, n_items: int) -> np.ndarray:
  """X [n_users + 1, n_items + 1] float32: 1 where the user has a positive (label > 0.5) training row; id 0 empty."""
  users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
  keep = (np.asarray(labels) > 0.5) & (users > 0) & (items > 0)
  x = np.zeros((n_users + 1, n_items + 1), np.float32)
  x[users[keep], items[keep]] = 1.0
  return x


def item_item(x: np.ndarray, kind: str, l2: float = 500.0, neighbours: int = 100, shrink: float = 0.0) -> np.ndarray:
  """W [I + 1, I + 1] float32 of `kind` (see the module docstring); row and column 0 (padding) are zero."""
  x64 = x.astype(np.float64)
  counts = x64.sum(0)  # [I + 1]
  if kind == "pop":
    return np.broadcast_to((counts / max(counts.max(), 1.0))[None, :], (len(counts), len(counts))).astype(np.float32)
  gram = x64.T @ x64  # [I + 1, I + 1] co-occurrence counts
  if kind == "itemknn":
    norm = np.sqrt(np.diag(gram))
    w = gram / (norm[:, None] * norm[None, :] + shrink + 1e-12)
    np.fill_diagonal(w, 0.0)
    if 0 < neighbours < w.shape[0]:
      cut = -np.partition(-w, neighbours - 1, axis=0)[neighbours - 1]  # [I + 1] each column's k-th largest
      w = np.where(w >= cut[None, :], w, 0.0)
  elif kind == "ease":
    gram[np.diag_indices_from(gram)] += l2
    p = np.linalg.inv(gram)
    w = -p / np.diag(p)[None, :]
    np.fill_diagonal(w, 0.0)
  else:
    raise ValueError(f"unknown closed-form model {kind!r}; expected one of {KINDS}")
  w[0, :] = 0.0
  w[:, 0] = 0.0
  return w.astype(np.float32)


class ItemItem(nn.Module):
  """score(u, i) = x_u · W[:, i] with X and W as constants (`consts` collection, filled by `CFModel.init`)."""

  n_users: int
  n_items: int
  kind: str = "ease"

  uses_history = False

  def setup(self):
    shape_x, shape_w = (self.n_users + 1, self.n_items + 1), (self.n_items + 1, self.n_items + 1)
    self.user_items = self.variable("consts", "user_items", jnp.zeros, shape_x, jnp.float32)
    self.item_item = self.variable("consts", "item_item", jnp.zeros, shape_w, jnp.float32)

  def user_repr(self, batch, train: bool = False):
    return self.user_items.value[batch["user"]]  # [B, I + 1]; user 0 (unknown) has no row: zeros

  def item_repr(self, items):
    return self.item_item.value.T[items]  # [..., I + 1]: item i's column of W

  def item_table(self):
    return self.item_item.value.T  # [I + 1, I + 1]

  def __call__(self, batch, items=None, train: bool = False):
    items = batch["item"] if items is None else items
    logits = base.dot_scores(self.user_repr(batch), self.item_repr(items))
    return base.mask_padding_items(logits, items)

  def score_all(self, batch):
    return base.dot_score_all(self.user_repr(batch), self.item_table())
