"""Where CoLLM gets its collaborative vectors: a frozen CF model from `jaxrec.cf`, as exported tables or as itself.

Two kinds of `params['cf']` subtree, both frozen:
  'tables'  {'item': [I + 1, d], 'user': [U + 1, d] (id models only), 'user_known': [U + 1] bool (optional)}: the
            arrays a CF run exports to `<workdir>/embeddings/{item,user}.npy` (`load_tables`). Cheap: a gather.
  'model'   the CF model's own variables ({'params': ..., 'consts': ...}), run through its linen module. Needed by
            the history models (SASRec, DIN), whose user vector is `user_repr(history)`: users never seen in training
            (every BookCrossing user) are served by the encoder itself.

Users without a trained id (user 0, and when `user_known` is given, users absent from the CF training split) get
the configured fallback: 'history' (the mean CF vector of the row's liked history items; disliked ones, which
BookCrossing histories hold, are left out), 'zeros', or 'learned' (one trainable vector `params['fece']
['user_fallback']`, so it trains with the mapper). History models never need the fallback.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.cf import MODELS as CF_MODELS
from jaxrec.cf.base import liked_history_mean
from jaxrec.errors import JaxrecError

Array = jax.Array
KINDS = ("tables", "model")
FALLBACKS = ("history", "zeros", "learned")


def history_families() -> tuple[str, ...]:
  """CF model names whose user vector comes from the history (no user ids)."""
  return tuple(sorted(n for n, m in CF_MODELS.items() if m.uses_history))


def resolve_kind(name: str, source: str) -> str:
  """'auto' → 'model' for history models (they need their encoder), 'tables' for id models (MF, LightGCN)."""
  if source != "auto":
    return source
  return "model" if name in history_families() else "tables"


@dataclasses.dataclass(frozen=True, eq=False)
class CFSource:
  """Static description of the CF side; `vectors` is a pure function of the params subtrees and the batch."""

  kind: str  # 'tables' | 'model'
  dim: int  # CF embedding size d
  user_fallback: str = "history"
  module: nn.Module | None = None  # the CF linen module, kind 'model' only

  @property
  def user_from_history(self) -> bool:
    """True when the CF model's own history encoder gives every user vector (SASRec, DIN)."""
    return self.module is not None and bool(getattr(type(self.module), "uses_history", False))

  def item_vectors(self, cf_params, items: Array) -> Array:
    """items [...] int → [..., d]; item 0 (padding) and ids beyond the CF model's catalogue (a split file's new
    items) → zeros."""
    if self.kind == "tables":
      table = cf_params["item"]
      known = (items != 0) & (items < table.shape[0])
      return jnp.take(table, jnp.clip(items, 0, table.shape[0] - 1), axis=0) * known[..., None].astype(table.dtype)
    known = items <= self.module.n_items
    vecs = self.module.apply(cf_params, jnp.where(known, items, 0), method="item_repr")
    return vecs * known[..., None].astype(vecs.dtype)

  def vectors(self, cf_params, fece_params, batch) -> tuple[Array, Array]:
    """(user [B, d], item [B, d]) float32 CF vectors of a batch (user, item, history [B, H], history_label)."""
    item = self.item_vectors(cf_params, batch["item"]).astype(jnp.float32)  # [B, d]
    if self.user_from_history:
      user = self.module.apply(cf_params, {"history": batch["history"]}, method="user_repr")  # [B, d]
      return user.astype(jnp.float32), item
    user_ids = batch["user"]  # [B]
    known = user_ids != 0
    if self.kind == "tables" and "user" in cf_params:
      table = cf_params["user"]
      by_id = jnp.take(table, jnp.clip(user_ids, 0, table.shape[0] - 1), axis=0)  # [B, d]
      known &= user_ids < table.shape[0]
      if "user_known" in cf_params:
        known &= jnp.take(cf_params["user_known"], jnp.clip(user_ids, 0, table.shape[0] - 1))
    elif self.kind == "model":
      by_id = self.module.apply(cf_params, {"user": user_ids}, method="user_repr")  # [B, d]
    else:  # an item-only table (a history model exported as tables): every user is served by the fallback
      by_id, known = jnp.zeros_like(item), jnp.zeros_like(known)
    fallback = self.fallback(cf_params, fece_params, batch, item)
    return jnp.where(known[:, None], by_id.astype(jnp.float32), fallback), item

  def fallback(self, cf_params, fece_params, batch, item: Array) -> Array:
    """[B, d] user vectors for users without a trained id."""
    if self.user_fallback == "zeros":
      return jnp.zeros_like(item)
    if self.user_fallback == "learned":
      return jnp.broadcast_to(fece_params["user_fallback"].astype(jnp.float32), item.shape)
    history = batch["history"]  # [B, H]
    return liked_history_mean(self.item_vectors(cf_params, history).astype(jnp.float32), history,
                              batch.get("history_label"))  # [B, d]


def make_source(cf_cfg, cf_params, cf_model=None) -> CFSource:
  """A CFSource for `config.model.cf` and the params it will read (checked against each other)."""
  kind = resolve_kind(cf_cfg.name, cf_cfg.source)
  if kind == "tables":
    if "item" not in cf_params:
      raise JaxrecError("config.model.cf.source='tables': the CF params hold no 'item' table")
    return CFSource("tables", int(cf_params["item"].shape[1]), cf_cfg.user_fallback)
  if cf_model is None:
    raise JaxrecError(f"config.model.cf: {cf_cfg.name!r} with source 'model' needs the CF model itself "
                      f"(its variables restored from {cf_cfg.workdir})")
  dim = int(np.asarray(cf_model.module.apply(cf_params, jnp.zeros((1,), jnp.int32), method="item_repr")).shape[-1])
  return CFSource("model", dim, cf_cfg.user_fallback, cf_model.module)


def load_tables(workdir, n_users: int, n_items: int) -> dict[str, Any]:
  """{'item', ['user']} float32 tables from a finished CF run's `embeddings/` folder, checked against the dataset."""
  folder = pathlib.Path(workdir) / "embeddings"
  item_path = folder / "item.npy"
  if not item_path.is_file():
    raise JaxrecError(f"{item_path}: missing; config.model.cf.workdir must be a finished CF run "
                      f"(launch/train.py --config=configs/baselines/<model>.py)")
  tables = {"item": np.load(item_path, allow_pickle=False).astype(np.float32)}
  if (folder / "user.npy").is_file():
    tables["user"] = np.load(folder / "user.npy", allow_pickle=False).astype(np.float32)
  for name, rows in (("item", n_items + 1), ("user", n_users + 1)):
    if name in tables and tables[name].shape[0] != rows:
      raise JaxrecError(f"{folder / (name + '.npy')}: {tables[name].shape[0]} rows, expected {rows} "
                        f"(the CF run used a different dataset or budget)")
  return {k: jnp.asarray(v) for k, v in tables.items()}


def known_users(train_users: np.ndarray, n_users: int) -> np.ndarray:
  """[U + 1] bool: users with at least one CF training row (their id vector was trained); index 0 is False."""
  known = np.zeros(n_users + 1, bool)
  users = np.asarray(train_users)
  known[users[(users > 0) & (users <= n_users)]] = True
  return known
