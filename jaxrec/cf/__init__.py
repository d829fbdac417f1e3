"""Collaborative-filtering models (MF, LightGCN, SASRec, DIN; most popular, ItemKNN and EASE in closed form) behind
one contract; see `jaxrec.cf.base`.

`build_model(model_cfg, n_users, n_items, train_split)` → `CFModel`, whose methods are pure functions of a
`variables` pytree ({'params': ..., 'consts': ...}): init, logits, loss, full-catalogue scores, embedding export.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrec import losses
from jaxrec.cf import closed_form
from jaxrec.cf.din import DIN
from jaxrec.cf.lightgcn import LightGCN, graph_consts
from jaxrec.cf.mf import MF
from jaxrec.cf.mscf import MultiScaleCF, MultiScaleGCN
from jaxrec.cf.sasrec import SASRec
from jaxrec.data.schema import positive_item_counts
from jaxrec.errors import JaxrecError

MODELS = {"mf": MF, "mscf": MultiScaleCF, "mscf_gcn": MultiScaleGCN, "lightgcn": LightGCN, "sasrec": SASRec,
          "din": DIN,
          **{kind: closed_form.ItemItem for kind in closed_form.KINDS}}
CLOSED_FORM = closed_form.KINDS  # fitted at build time: nothing to train, no stages
LOSSES = ("bce", "bpr", "softmax")
FULL_CATALOGUE = -1  # config.model.n_negatives: softmax over every item instead of sampled negatives
TEXT_MODELS = ("mscf", "mscf_gcn")  # read the items' multi-scale text encodings (config.model.text)
# id models whose score_all is the training-time score (no dropout)
FULL_SOFTMAX_MODELS = ("mf", "mscf", "mscf_gcn", "lightgcn")
# Config fields (of config.model) each model reads, beside n_users / n_items.
MODEL_FIELDS = {
    "mf": ("embed_dim", "init_std"),
    "mscf": ("embed_dim", "init_std", "heads", "text_rank"),  # + config.model.text: `jaxrec.train.text_features`
    "mscf_gcn": ("embed_dim", "num_layers", "init_std", "heads", "text_rank"),  # + config.model.text
    "lightgcn": ("embed_dim", "num_layers", "init_std"),
    "sasrec": ("embed_dim", "num_layers", "num_heads", "max_len", "dropout", "init_std"),
    "din": ("embed_dim", "max_len", "attn_hidden", "mlp_hidden", "init_std"),
    "pop": (),
    "itemknn": ("neighbours", "shrink"),
    "ease": ("l2",),
}


@dataclasses.dataclass(frozen=True, eq=False)
class CFModel:
  """A linen module plus the non-trainable constants it needs (LightGCN's graph); holds no parameters."""

  name: str
  module: nn.Module
  consts: dict[str, np.ndarray]
  loss: str = "bce"
  n_negatives: int = 1
  reg: float = 0.0  # L2 on the batch's own embeddings (BPR / softmax; MF and LightGCN), see `loss_fn`

  @property
  def uses_history(self) -> bool:
    return type(self.module).uses_history

  @property
  def n_items(self) -> int:
    return self.module.n_items

  def dummy_batch(self, batch_size: int = 2, history_len: int = 4) -> dict[str, np.ndarray]:
    z = np.zeros((batch_size,), np.int64)
    return {"user": z + 1, "item": z + 1, "label": np.zeros((batch_size,), np.float32),
            "history": np.ones((batch_size, history_len), np.int64), "history_len": z.astype(np.int32) + 1}

  def init(self, rng) -> dict[str, Any]:
    """variables = {'params': ..., ['consts': ...]} with the real constants in place."""
    variables = dict(self.module.init({"params": rng}, self.dummy_batch()))
    if self.consts:
      variables["consts"] = {k: jnp.asarray(v) for k, v in self.consts.items()}
    return variables

  def logits(self, variables, batch, items=None, train: bool = False, rng=None):
    """[B] (or [B, C] for items [B, C]) logits; padding item 0 gets base.PAD_LOGIT."""
    rngs = {"dropout": _fast_key(rng)} if (train and rng is not None) else None
    return self.module.apply(variables, batch, items, train, rngs=rngs)

  def score_all(self, variables, batch):
    """[B, n_items + 1] full-catalogue logits, column 0 masked."""
    return self.module.apply(variables, batch, method="score_all")

  def loss_fn(self, variables, batch, rng):
    """(scalar loss, aux dict). CTR rows use BCE on their labels; implicit rows (label 1) rank the item above
    `n_negatives` items drawn uniformly from 1..n_items (BPR or sampled softmax), or, with n_negatives = -1
    (`FULL_CATALOGUE`, softmax only), above every item of the catalogue (one [B, I] product per step: ML-1M's 3,706
    items cost less than LightGCN's propagation); plus, with `reg` > 0,
    reg / 2 · mean over rows of (‖e_u‖² + Σ_c ‖e_c‖²) on the row's user and 1 + n_negatives candidates' own
    (for LightGCN: layer-0) embeddings, as RecBole and the LightGCN paper regularise: only what the batch touched,
    where decoupled weight decay shrinks every embedding every step."""
    weights = batch.get("weight")
    drop_rng, neg_rng = jax.random.split(rng)
    if self.loss == "bce":
      logits = self.logits(variables, batch, train=True, rng=drop_rng)  # [B]
      return losses.bce(logits, batch["label"], weights), {"logit_mean": jnp.mean(logits)}
    w = batch["label"] if weights is None else batch["label"] * weights  # only positives are ranked
    if self.n_negatives == FULL_CATALOGUE:  # softmax over every item: [B, I + 1], padding column at PAD_LOGIT
      cand = batch["item"][:, None]  # [B, 1]: the L2 term covers the user and its positive
      loss = losses.sampled_softmax(self.score_all(variables, batch), w, target=batch["item"])
    else:
      b = batch["item"].shape[0]
      neg = jax.random.randint(neg_rng, (b, self.n_negatives), 1, self.n_items + 1)  # [B, N]
      cand = jnp.concatenate([batch["item"][:, None], neg], axis=1)  # [B, 1 + N]
      logits = self.logits(variables, batch, cand, train=True, rng=drop_rng)  # [B, 1 + N]
      loss = losses.bpr(logits[:, 0], logits[:, 1:], w) if self.loss == "bpr" else losses.sampled_softmax(logits, w)
    if not self.reg:
      return loss, {}
    sq = self.module.apply(variables, batch, cand, method="ego_sq_norms")  # [B]
    l2 = 0.5 * jnp.sum(sq * w) / jnp.maximum(jnp.sum(w), 1.0)  # over the ranked rows, as the loss
    return loss + self.reg * l2, {"l2": l2}

  def export_embeddings(self, variables, histories: np.ndarray | None = None,
                        batch_size: int = 1024) -> dict[str, np.ndarray]:
    """'item' [n_items + 1, D] (row 0 zero); 'user' [n_users + 1, D] for id models (row 0 zero); 'history'
    [N, D] for history models when `histories` [N, T] is given (SASRec: encoder output; DIN: mean pooling)."""
    item = self.module.apply(variables, method="item_table")
    out = {"item": np.asarray(item)}
    if not self.uses_history:
      users = {"user": jnp.arange(self.module.n_users + 1)}
      out["user"] = np.asarray(self.module.apply(variables, users, method="user_repr"))
    elif histories is not None:
      fn = jax.jit(lambda v, h: self.module.apply(v, {"history": h}, method="user_repr"))
      out["history"] = np.concatenate([np.asarray(fn(variables, histories[i:i + batch_size]))
                                       for i in range(0, len(histories), batch_size)])
    return out


def _fast_key(rng):
  """An 'rbg' key derived from a threefry one: dropout masks from XLA's RngBitGenerator cost about half as much
  on CPU as threefry's (SASRec's step time halves)."""
  bits = jax.random.key_data(jax.random.split(rng, 2)).reshape(-1)[:4]  # [4] uint32
  return jax.random.wrap_key_data(bits, impl="rbg")


def _cold_weighted(item_text, model_cfg, train_split, n_items: int) -> np.ndarray:
  """[I + 1, K, D] float32 `item_text`, as given, or with `config.model.text_cold` = n0 > 0 each item's rows scaled
  by w_i = sqrt(n0 / (n0 + n_i)) (n_i: its positive training rows), so the text speaks for items with few
  interactions and fades where the id embedding has data (w = 0.5 at n_i = 3 n0)."""
  text = np.asarray(item_text, np.float32)
  n0 = float(model_cfg.get("text_cold", 0.0))
  if n0 < 0:
    raise JaxrecError(f"config.model.text_cold: expected 0 (off) or a positive row count, got {n0}")
  if not n0:
    return text
  if train_split is None:
    raise JaxrecError("config.model.text_cold: needs the training split to count each item's rows")
  counts = positive_item_counts(train_split.item, train_split.label, n_items)  # [I + 1]
  return text * np.sqrt(n0 / (n0 + counts)).astype(np.float32)[:, None, None]


def build_model(model_cfg, n_users: int, n_items: int, train_split=None, item_text=None) -> CFModel:
  """A CFModel from `config.model` (name, loss, n_negatives and the fields in MODEL_FIELDS[name]).

  LightGCN and 'mscf_gcn' need `train_split` (arrays user / item / label) to build their graph; TEXT_MODELS need
  `item_text` [n_items + 1, K, D], the items' multi-scale text encodings.
  """
  name = model_cfg.name
  if name not in MODELS:
    raise JaxrecError(f"config.model.name: unknown CF model {name!r}; expected one of {sorted(MODELS)}")
  loss = model_cfg.get("loss", "bce")
  if loss not in LOSSES:
    raise JaxrecError(f"config.model.loss: unknown loss {loss!r}; expected one of {list(LOSSES)}")
  kwargs = {f: (tuple(model_cfg[f]) if f.endswith("hidden") else model_cfg[f])
            for f in MODEL_FIELDS[name] if f in model_cfg}
  consts = {}
  if name in CLOSED_FORM:
    if train_split is None:
      raise JaxrecError(f"{name} needs the training split to fit")
    x = closed_form.interactions(train_split.user, train_split.item, train_split.label, n_users, n_items)
    consts = {"user_items": x, "item_item": closed_form.item_item(x, name, **kwargs)}
    kwargs = {"kind": name}
  if name in ("lightgcn", "mscf_gcn"):
    if train_split is None:
      raise JaxrecError(f"{name} needs the training split to build its interaction graph")
    consts = graph_consts(train_split.user, train_split.item, train_split.label, n_users, n_items)
    kwargs["n_edges"] = int(consts["edge_weight"].shape[0]) if "edge_weight" in consts else 0
  if name in TEXT_MODELS:
    if item_text is None or item_text.ndim != 3 or item_text.shape[0] != n_items + 1:
      raise JaxrecError(f"config.model.name: {name!r} needs the items' text encodings [{n_items + 1}, K, D], got "
                        f"{None if item_text is None else item_text.shape}")
    consts["item_text"] = _cold_weighted(item_text, model_cfg, train_split, n_items)
    kwargs.update(n_scales=int(item_text.shape[1]), text_dim=int(item_text.shape[2]))
  module = MODELS[name](n_users=int(n_users), n_items=int(n_items), **kwargs)
  reg = float(model_cfg.get("reg", 0.0))
  if reg and (loss == "bce" or not hasattr(module, "ego_sq_norms")):
    raise JaxrecError(f"config.model.reg: {reg} needs loss 'bpr' or 'softmax' and model 'mf' or 'lightgcn'; got "
                      f"loss {loss!r}, model {name!r} (use 0, or the optimiser's weight_decay)")
  n_negatives = int(model_cfg.get("n_negatives", 1))
  if n_negatives == FULL_CATALOGUE and (loss != "softmax" or name not in FULL_SOFTMAX_MODELS):
    raise JaxrecError(f"config.model.n_negatives: -1 (softmax over the whole catalogue) needs loss 'softmax' and "
                      f"model one of {list(FULL_SOFTMAX_MODELS)}; got loss {loss!r}, model {name!r}")
  return CFModel(name=name, module=module, consts=consts, loss=loss, n_negatives=n_negatives, reg=reg)
