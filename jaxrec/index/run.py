"""A finished CF run seen from the retrieval side: its item table, how to turn a user into a query vector, and
which items each user has already seen.

  run = load_run(workdir)                 # config.json + embeddings/ (+ the best params for history models)
  q = run.query_vectors(users, histories)  # [B, D]: what Faiss searches with
  seen = run.seen_items('all')             # {user: item ids of its training interactions}

Query vectors reproduce the CF model's own score: MF / LightGCN `<user_table[u], item>`, SASRec `<encoder(history),
item>`. A user without a trained id (id 0, or a new user given as titles) is the mean of its liked history items'
vectors for id models (CoLLM's 'history' fallback); history models encode the history itself. DIN scores with
target-aware attention, which no inner product reproduces: its query is the mean-pooled history (its exported
user vector), so Faiss gives DIN candidates, not DIN's ranking.
"""

from __future__ import annotations

import dataclasses
import difflib
import pathlib
from typing import Any, Callable

import jax
import numpy as np

from jaxrec.cf.base import liked_history_mean
from jaxrec.data import schema
from jaxrec.errors import JaxrecError


@dataclasses.dataclass
class CFRun:
  """What retrieval needs from a CF run (built by `load_run`, or `from_model` in tests and benchmarks)."""

  item_table: np.ndarray  # [n_items + 1, D] float32, row 0 = padding
  user_table: np.ndarray | None  # [n_users + 1, D] for id models
  dataset: Any  # jaxrec.data Dataset or jaxrec.cf.synthetic Dataset
  encode_history: Callable[[np.ndarray], np.ndarray] | None = None  # history [B, H] → [B, D] (history models)
  model_name: str = ""
  workdir: pathlib.Path | None = None
  config: Any = None

  @property
  def n_items(self) -> int:
    return int(self.item_table.shape[0] - 1)

  @property
  def dim(self) -> int:
    return int(self.item_table.shape[1])

  def query_vectors(self, users: np.ndarray, histories: np.ndarray, history_labels: np.ndarray | None = None,
                    batch_size: int = 1024) -> np.ndarray:
    """[B, D] float32 query vectors for users [B] with histories [B, H] (left-padded, most recent last)."""
    users = np.asarray(users, np.int64)
    histories = np.asarray(histories, np.int64)
    if self.encode_history is not None:
      return np.concatenate([np.asarray(self.encode_history(histories[i:i + batch_size]), np.float32)
                             for i in range(0, len(users), batch_size)]) if len(users) else \
          np.zeros((0, self.dim), np.float32)
    labels = None if history_labels is None else np.asarray(history_labels)
    fallback = np.asarray(liked_history_mean(self.item_table[histories], histories, labels))  # [B, D]
    if self.user_table is None:
      return fallback.astype(np.float32)
    known = (users > 0) & (users < len(self.user_table))
    by_id = self.user_table[np.where(known, users, 0)]  # [B, D]
    return np.where(known[:, None], by_id, fallback).astype(np.float32)

  def seen_items(self, exclude: str = "all") -> dict[int, np.ndarray]:
    """Per user, the item ids never to recommend (`jaxrec.data.schema.seen_items`; 'all' by default here)."""
    return schema.seen_items(self.dataset, exclude)

  def user_history(self, user: int, max_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(history [H], labels [H]) of an existing user as of the end of training: its liked training items in time
    order, left-padded to the dataset's history length."""
    tr = self.dataset.splits["train"]
    h = int(tr.history.shape[1]) if max_len is None else max_len
    rows = np.flatnonzero((np.asarray(tr.user) == user) & (np.asarray(tr.label) > 0.5))
    if not len(rows) and user not in self.seen_items("all"):
      raise JaxrecError(f"--user={user}: no training interactions in {getattr(self.dataset, 'name', 'the data')}; "
                        f"pass --history='title; title; ...' for a new user")
    items = np.asarray(tr.item)[rows[np.argsort(np.asarray(tr.timestamp)[rows], kind="stable")]][-h:]
    return _left_pad(items, h), _left_pad(np.ones(len(items), np.int8), h, -1)

  def items_from_titles(self, text: str) -> np.ndarray:
    """Item ids of 'title; title; ...' (exact match, case-insensitive); an unknown title fails naming close ones."""
    titles = [t.strip() for t in text.split(";") if t.strip()]
    if not titles:
      raise JaxrecError("--history: expected 'title; title; ...', got no title")
    lookup: dict[str, int] = {}
    for i, t in enumerate(self.dataset.item_text):
      if i:
        lookup.setdefault(t.strip().lower(), i)
    ids = []
    for t in titles:
      if t.lower() not in lookup:
        close = difflib.get_close_matches(t.lower(), list(lookup), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(self.dataset.item_text[lookup[c]]) for c in close)}?" if close else ""
        raise JaxrecError(f"--history: no item titled {t!r} in {getattr(self.dataset, 'name', 'the catalogue')}"
                          f"{hint}")
      ids.append(lookup[t.lower()])
    return np.asarray(ids, np.int64)


def _left_pad(x: np.ndarray, n: int, fill: int = 0) -> np.ndarray:
  out = np.full(n, fill, x.dtype)
  if len(x):
    out[n - len(x):] = x[-n:]
  return out


def from_model(model, variables, dataset, model_name: str = "") -> CFRun:
  """A CFRun from a `jaxrec.cf.CFModel` and its variables (no workdir)."""
  tables = model.export_embeddings(variables)
  encode = None
  if model.uses_history:
    fn = jax.jit(lambda v, h: model.module.apply(v, {"history": h}, method="user_repr"))
    encode = lambda h: fn(variables, h)  # noqa: E731
  return CFRun(item_table=np.asarray(tables["item"], np.float32),
               user_table=np.asarray(tables["user"], np.float32) if "user" in tables else None,
               dataset=dataset, encode_history=encode, model_name=model_name or model.name)


def load_run(workdir) -> CFRun:
  """The CFRun of a finished `launch/train.py` CF run (its dataset rebuilt from config.json)."""
  from jaxrec.train import cf_task, loop, workdir as workdir_lib  # heavy imports, only for runs on disk

  workdir = pathlib.Path(workdir)
  config = workdir_lib.read_config(workdir)
  family = config.model.get("family", "cf")
  if family != "cf":
    raise JaxrecError(f"{workdir}: a {family!r} run; the index is built from a CF run's item embeddings "
                      f"(configs/baselines/<model>.py)")
  item_path = workdir / "embeddings" / "item.npy"
  if not item_path.is_file():
    raise JaxrecError(f"{item_path}: missing; the run has not finished (launch/train.py exports it at the end)")
  dataset, model, init = cf_task.build_model(config)
  item = np.load(item_path, allow_pickle=False).astype(np.float32)
  if item.shape[0] != dataset.n_items + 1:
    raise JaxrecError(f"{item_path}: {item.shape[0]} rows, but the run's dataset has {dataset.n_items} items + "
                      f"padding")
  user_path = workdir / "embeddings" / "user.npy"
  user = np.load(user_path, allow_pickle=False).astype(np.float32) if user_path.is_file() else None
  encode = None
  if model.uses_history:  # the history encoder needs the trained params themselves
    variables = loop.restore_params(config, workdir, init)
    fn = jax.jit(lambda v, h: model.module.apply(v, {"history": h}, method="user_repr"))
    encode = lambda h: fn(variables, h)  # noqa: E731
  return CFRun(item_table=item, user_table=None if model.uses_history else user, dataset=dataset,
               encode_history=encode, model_name=model.name, workdir=workdir, config=config)
