"""Matrix factorisation (CoLLM's MF): logit(u, i) = <p_u, q_i>."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxrec.cf import base


class MF(nn.Module):
  """Dot product of a user and an item embedding; user 0 (unknown) and item 0 (padding) embed to zeros."""

  n_users: int
  n_items: int
  embed_dim: int = 64
  init_std: float = 0.1

  uses_history = False  # class constant: MF needs a trained user id

  def setup(self):
    init = nn.initializers.normal(self.init_std)
    self.user_embed = nn.Embed(self.n_users + 1, self.embed_dim, embedding_init=init)
    self.item_embed = nn.Embed(self.n_items + 1, self.embed_dim, embedding_init=init)

  def user_repr(self, batch, train: bool = False):
    user = batch["user"]
    return self.user_embed(user) * base.id_mask(user)[..., None]  # [B, D]

  def item_repr(self, items):
    return self.item_embed(items) * base.id_mask(items)[..., None]  # [..., D]

  def item_table(self):
    return self.item_repr(jnp.arange(self.n_items + 1))  # [I + 1, D]

  def __call__(self, batch, items=None, train: bool = False):
    items = batch["item"] if items is None else items
    logits = base.dot_scores(self.user_repr(batch, train), self.item_repr(items))
    return base.mask_padding_items(logits, items)

  def score_all(self, batch):
    return base.dot_score_all(self.user_repr(batch), self.item_table())

  def ego_sq_norms(self, batch, items):
    """[B] ‖p_u‖² + Σ_c ‖q_c‖² of each row's user and candidates `items` [B, C] (`CFModel`'s `reg`)."""
    return base.sq_norms(self.user_repr(batch), self.item_repr(items))
