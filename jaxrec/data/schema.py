"""The one schema every dataset is converted to, its checks, and its on-disk cache.

A `Dataset` holds named `Split`s of interactions plus item text. Ids are 1..n; 0 is padding (in histories) or
"no id" (BookCrossing's TALLRec records have no user id). Every `Split` array has length N (rows):

  user         int64   [N]     user id, 0 when unknown
  item         int64   [N]     target item id
  label        float32 [N]     1 = liked, 0 = not liked
  timestamp    int64   [N]     unix seconds, -1 when unknown
  history      int64   [N, H]  earlier item ids, LEFT-padded with 0, most recent last (H = max_history)
  history_len  int32   [N]     number of non-padding entries in `history`
  history_label int8   [N, H]  1 liked / 0 disliked / -1 padding (datasets whose history holds both, else all 1)
  warm         bool    [N]     CoLLM's not_cold where defined, else "user and item seen in train"

A split read from a file (`launch/evaluate.py --split=FILE`) may hold ids beyond the dataset's (users or items it
has never seen); `item_text_extra` then gives the text of those items where the file carries it ({id: text}).

Caches are written with numpy's npz (no pickles) plus JSON, inside `jaxrec.paths.atomic_dir`, so a reader sees
either a complete cache or none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import zipfile
from typing import Callable, Sequence

import numpy as np

from jaxrec import paths
from jaxrec.errors import JaxrecError

CACHE_VERSION = 1
MANIFEST = "sha256.json"  # {file name: SHA-256} of a cached dataset's files
_ARRAY_FIELDS = ("user", "item", "label", "timestamp", "history", "history_len", "history_label", "warm")


@dataclasses.dataclass
class Split:
  """One split of interactions (see the module docstring for shapes and dtypes)."""

  user: np.ndarray
  item: np.ndarray
  label: np.ndarray
  timestamp: np.ndarray
  history: np.ndarray
  history_len: np.ndarray
  history_label: np.ndarray
  warm: np.ndarray
  item_text_extra: dict[int, str] = dataclasses.field(default_factory=dict)  # items beyond the dataset's (files)

  def __len__(self) -> int:
    return int(self.item.shape[0])

  def take(self, rows: np.ndarray) -> "Split":
    """Rows `rows` of every array, as a new Split."""
    return Split(**{f: getattr(self, f)[rows] for f in _ARRAY_FIELDS}, item_text_extra=self.item_text_extra)

  def history_ids(self, row: int, last: int | None = None, liked: bool | None = None) -> list[int]:
    """Non-padding history ids of `row`, oldest first; `last` keeps the most recent ones, `liked` filters."""
    n = int(self.history_len[row])
    ids = self.history[row, self.history.shape[1] - n:] if n else self.history[row, :0]
    labels = self.history_label[row, self.history.shape[1] - n:] if n else self.history_label[row, :0]
    if liked is not None:
      ids = ids[labels == (1 if liked else 0)]
    if last is not None:
      ids = ids[max(0, len(ids) - last):]
    return [int(i) for i in ids]


@dataclasses.dataclass
class Dataset:
  """A dataset in the common schema: splits, id ranges and item text indexed by item id (index 0 = '')."""

  name: str
  splits: dict[str, Split]
  n_users: int
  n_items: int
  item_text: list[str]
  item_genres: list[str]
  quote_titles: bool = True
  train_items_by_user: dict[int, np.ndarray] | None = None
  info: dict = dataclasses.field(default_factory=dict)

  def __getitem__(self, split: str) -> Split:
    if split not in self.splits:
      raise JaxrecError(f"dataset {self.name}: no split {split!r}; available: {', '.join(self.splits)}")
    return self.splits[split]


def make_split(user, item, label, timestamp, histories: Sequence[Sequence[int]], max_history: int,
               warm=None, history_labels: Sequence[Sequence[int]] | None = None) -> Split:
  """Builds a Split, left-padding each history to `max_history` (keeping its most recent entries)."""
  n = len(item)
  hist = np.zeros((n, max_history), np.int64)  # [N, H]
  hlab = np.full((n, max_history), -1, np.int8)  # [N, H]
  hlen = np.zeros(n, np.int32)  # [N]
  for r, h in enumerate(histories):
    k = min(len(h), max_history)
    if k:
      hist[r, max_history - k:] = h[len(h) - k:]
      hlab[r, max_history - k:] = history_labels[r][len(h) - k:] if history_labels is not None else 1
    hlen[r] = k
  return Split(
      user=np.asarray(user, np.int64), item=np.asarray(item, np.int64), label=np.asarray(label, np.float32),
      timestamp=np.asarray(timestamp, np.int64), history=hist, history_len=hlen, history_label=hlab,
      warm=np.ones(n, bool) if warm is None else np.asarray(warm, bool))


def sequential_histories(user: np.ndarray, item: np.ndarray, label: np.ndarray, timestamp: np.ndarray,
                         max_history: int, strict: bool = True) -> list[np.ndarray]:
  """CoLLM's history rule: for each row, the user's earlier positive items, in time order.

  Rows must already be sorted by (user, timestamp). With `strict`, positives that share the target's timestamp are
  left out, so a history holds only items rated strictly earlier. CoLLM's notebook instead keeps every positive of an
  earlier ROW, ties included (`strict=False`); in its ML-1M train split 11,474 history entries share the target's
  second, since MovieLens users rate in bursts.
  """
  out: list[np.ndarray] = []
  start = 0
  n = len(item)
  while start < n:
    end = start
    while end < n and user[end] == user[start]:
      end += 1
    pos: list[int] = []  # positives of this user with timestamp < current, oldest first
    pending: list[int] = []  # positives at the current timestamp (become history once time moves on)
    cur_t = None
    for r in range(start, end):
      if timestamp[r] != cur_t or not strict:
        pos.extend(pending)
        pending = []
        cur_t = timestamp[r]
      out.append(np.asarray(pos[-max_history:], np.int64))
      if label[r] > 0:
        pending.append(int(item[r]))
    start = end
  return out


def split_from_rows(ds: Dataset, user, item, label, timestamp, max_history: int, strict: bool = True,
                    item_text_extra: dict[int, str] | None = None) -> Split:
  """A Split of new rows (a split file) of dataset `ds`, with the dataset's own history rule: each row's history is
  the user's earlier positives (`sequential_histories`) among every interaction `ds` knows (all its splits but the
  `*_small` subsets) and the file's own rows, a row present in both counted once; `warm` against `ds`'s train.
  Rows keep the file's order."""
  user, item = np.asarray(user, np.int64), np.asarray(item, np.int64)
  label, timestamp = np.asarray(label, np.float32), np.asarray(timestamp, np.int64)
  known = [sp for name, sp in ds.splits.items() if not name.endswith("_small") and name != "pool"]
  ctx = {k: np.concatenate([getattr(sp, k) for sp in known] + [v])
         for k, v in (("user", user), ("item", item), ("label", label), ("timestamp", timestamp))}
  keys = np.stack([ctx["user"], ctx["item"], ctx["timestamp"]], 1)
  _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
  inverse = inverse.reshape(-1)  # one context row per (user, item, time); file row r → inverse[-n + r]
  order = first[np.lexsort((ctx["timestamp"][first], ctx["user"][first]))]
  hist = sequential_histories(ctx["user"][order], ctx["item"][order], ctx["label"][order], ctx["timestamp"][order],
                              max_history, strict=strict)
  position = np.empty(len(ctx["user"]), np.int64)  # context row (first of its key) → its place in `order`
  position[order] = np.arange(len(order))
  rows = position[first[inverse[len(ctx["user"]) - len(user):]]]
  split = make_split(user, item, label, timestamp, [hist[r] for r in rows], max_history)
  split.warm = warm_flags(split, ds.splits["train"])
  split.item_text_extra = dict(item_text_extra or {})
  return split


def with_split_texts(ds: Dataset, split: Split) -> Dataset:
  """`ds` with its item text extended by a file split's `item_text_extra` (ids beyond `ds.n_items`; '' where the
  file gave none), so prompts can name items the dataset never had."""
  if not split.item_text_extra:
    return ds
  top = max(split.item_text_extra)
  text = list(ds.item_text) + [""] * max(0, top + 1 - len(ds.item_text))
  genres = list(ds.item_genres) + [""] * max(0, top + 1 - len(ds.item_genres))
  for i, t in split.item_text_extra.items():
    if i > ds.n_items:
      text[i] = t
  return dataclasses.replace(ds, item_text=text, item_genres=genres)


def warm_flags(split: Split, train: Split) -> np.ndarray:
  """True where both the row's user (when it has one) and item occur in `train` (CoLLM's not_cold)."""
  items = np.isin(split.item, train.item)
  users = np.where(split.user > 0, np.isin(split.user, train.user), True)
  return items & users


def positive_item_counts(item: np.ndarray, label: np.ndarray, n_items: int) -> np.ndarray:
  """[I + 1] int: each item id's positive rows (label > 0.5) among `item` / `label`, e.g. a training split's."""
  return np.bincount(np.asarray(item)[np.asarray(label) > 0.5], minlength=n_items + 1)[:n_items + 1]


def seen_items(dataset, exclude: str = "positives") -> dict[int, np.ndarray]:
  """Per user, the sorted item ids never to recommend: the liked training items ('positives', what top-K evaluation
  masks) or every training interaction ('all', what retrieval excludes). A dataset's own `train_items_by_user`
  (ML-1M top-K: the whole train split's) wins when it has one. Works on any dataset with a 'train' split."""
  if exclude not in ("positives", "all"):
    raise JaxrecError(f"exclude: expected 'positives' or 'all', got {exclude!r}")
  given = getattr(dataset, "train_items_by_user", None)
  if given is not None:
    return given
  tr = dataset.splits["train"]
  keep = np.ones(len(tr.user), bool) if exclude == "all" else np.asarray(tr.label) > 0.5
  users, items = np.asarray(tr.user)[keep], np.asarray(tr.item)[keep]
  order = np.argsort(users, kind="stable")
  users, items = users[order], items[order]
  bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True]) if len(users) else np.zeros(1, np.int64)
  return {int(users[lo]): np.unique(items[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])}


def validate(ds: Dataset, source: str) -> Dataset:
  """Raises a one-line JaxrecError when a split is empty, has a ragged array or labels outside {0, 1}."""
  for name, sp in ds.splits.items():
    n = len(sp)
    if n == 0:
      raise JaxrecError(f"{source}: split {name!r} of {ds.name} is empty; expected at least one row")
    for f in _ARRAY_FIELDS:
      if getattr(sp, f).shape[0] != n:
        raise JaxrecError(f"{source}: split {name!r} field {f} has {getattr(sp, f).shape[0]} rows, expected {n}")
    bad = np.flatnonzero((sp.label != 0) & (sp.label != 1))
    if bad.size:
      raise JaxrecError(f"{source}: split {name!r} row {int(bad[0])} has label {sp.label[bad[0]]!r}; "
                        f"expected 0 or 1")
    if sp.item.min() < 1 or sp.item.max() > ds.n_items:
      raise JaxrecError(f"{source}: split {name!r} has item ids outside 1..{ds.n_items}")
  if len(ds.item_text) != ds.n_items + 1:
    raise JaxrecError(f"{source}: item_text has {len(ds.item_text)} entries, expected n_items + 1 = {ds.n_items + 1}")
  return ds


def file_fingerprint(files: Sequence[pathlib.Path]) -> list:
  """(resolved path, size, mtime) of each source file: a cache built from other files is never reused, and one
  file reached by a relative path, an absolute one or a symlink shares one cache."""
  return [[str(pathlib.Path(f).resolve()), f.stat().st_size, int(f.stat().st_mtime)] for f in files]


def cache_path(name: str, key: dict) -> pathlib.Path:
  digest = hashlib.sha256(json.dumps([CACHE_VERSION, key], sort_keys=True, default=str).encode()).hexdigest()[:16]
  return paths.cache_dir() / "datasets" / f"{name}-{digest}"


def save(ds: Dataset, final: pathlib.Path) -> None:
  """Writes `ds` to directory `final` atomically (npz per split + meta.json)."""
  with paths.atomic_dir(final) as tmp:
    for split_name, sp in ds.splits.items():
      np.savez(tmp / f"{split_name}.npz", **{f: getattr(sp, f) for f in _ARRAY_FIELDS})
    if ds.train_items_by_user is not None:
      users = np.array(sorted(ds.train_items_by_user), np.int64)
      lens = np.array([len(ds.train_items_by_user[u]) for u in users], np.int64)
      flat = np.concatenate([ds.train_items_by_user[u] for u in users]) if len(users) else np.zeros(0, np.int64)
      np.savez(tmp / "train_items_by_user.npz", users=users, lens=lens, items=flat.astype(np.int64))
    meta = dict(name=ds.name, splits=list(ds.splits), n_users=ds.n_users, n_items=ds.n_items,
                item_text=ds.item_text, item_genres=ds.item_genres, quote_titles=ds.quote_titles, info=ds.info)
    (tmp / "meta.json").write_text(json.dumps(meta))
    # Checked on every load (re-hashed only when a file's size or mtime changed): a corrupted cache is rebuilt.
    sums = {f.name: paths.sha256_file(f) for f in sorted(tmp.iterdir())}
    (tmp / MANIFEST).write_text(json.dumps(sums))
  for name, digest in sums.items():
    paths.record_file(final / name, digest)


def load(final: pathlib.Path) -> Dataset:
  sums = json.loads((final / MANIFEST).read_text())  # a cache without one (older jaxrec) is rebuilt
  present = {f.name for f in final.iterdir() if not f.name.startswith(".") and f.name != MANIFEST}
  if set(sums) != present:
    raise ValueError(f"{final / MANIFEST}: lists {sorted(sums)}, the cache holds {sorted(present)}")
  for name, digest in sums.items():
    paths.verify_file(final / name, digest)
  meta = json.loads((final / "meta.json").read_text())
  splits = {}
  for s in meta["splits"]:
    with np.load(final / f"{s}.npz", allow_pickle=False) as z:
      splits[s] = Split(**{f: z[f] for f in _ARRAY_FIELDS})
  by_user = None
  if (final / "train_items_by_user.npz").exists():
    with np.load(final / "train_items_by_user.npz", allow_pickle=False) as z:
      # Each z[...] reads the whole array from the archive again: read once, then slice (views of one array).
      # Indexing z["items"] per user read and kept a full copy per user: ~23 GB for ML-1M's 6,040 users.
      users, lens, items = z["users"], z["lens"], z["items"]
    offsets = np.concatenate([[0], np.cumsum(lens)])
    by_user = {int(u): items[offsets[k]:offsets[k + 1]] for k, u in enumerate(users)}
  return Dataset(name=meta["name"], splits=splits, n_users=meta["n_users"], n_items=meta["n_items"],
                 item_text=meta["item_text"], item_genres=meta["item_genres"], quote_titles=meta["quote_titles"],
                 train_items_by_user=by_user, info=meta.get("info", {}))


def cached(name: str, key: dict, build: Callable[[], Dataset], use_cache: bool = True) -> Dataset:
  """Returns the cached dataset for `key`, building and caching it (atomically) on a miss."""
  if not use_cache:
    return build()
  final = cache_path(name, key)
  if (final / "meta.json").exists():
    try:
      ds = load(final)
      ds.info.update(cache=os.fspath(final), from_cache=True)
      return ds
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, JaxrecError):
      pass  # an unreadable or corrupted cache (or one from another version) is rebuilt, never trusted
  ds = build()
  try:
    save(ds, final)
  except OSError as e:  # a read-only cache dir must not stop loading
    ds.info["cache_error"] = str(e)
  else:
    ds.info["cache"] = os.fspath(final)
  return ds
