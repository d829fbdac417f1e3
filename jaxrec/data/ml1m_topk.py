"""MovieLens-1M, 8:1:1 per-user split of implicit interactions, for top-K ranking (the multi-scale paper).

Protocol: every rating is an interaction (label 1; ranking is scored against all items a user has not seen in
train). Per user, the interactions are put in a seeded random order (`seed`) and cut 8:1:1 (`split_fracs`;
train gets int(0.8 n), valid int(0.1 n), test the rest). Movie ids are remapped to 1..n in ascending MovieLens id
order (only rated movies get an id); user ids are MovieLens' own (1..6040).
History: for a train row, the user's train items that come before it in time (file order when there are no
timestamps); for a valid / test row, the user's train items, most recent last. `train_items_by_user` maps each user
to its sorted train item ids, for masking seen items at evaluation.

Sources: `<root>/ml-1m/ratings.dat` (official GroupLens file, with ratings and timestamps) when present, else
`<root>/ml1m-raw/ratings_implicit.parquet` (user_id, movie_id in ratings.dat order, no timestamps; timestamps -1).
Titles and genres from movies.dat in the same folder (or the other one). Cached atomically as npz.
"""

from __future__ import annotations

import pathlib

import numpy as np

from jaxrec.data import _io, schema
from jaxrec.data.ml1m_collm import raw_ml1m, read_movies
from jaxrec.errors import JaxrecError

NAME = "ml1m_topk"
HOW = ("put the official ml-1m/ratings.dat + movies.dat (https://files.grouplens.org/datasets/movielens/ml-1m.zip) "
       "or ml1m-raw/ratings_implicit.parquet + movies.dat (see ../shared/data/README.md) under the data root")


def _read_pairs(root: pathlib.Path):
  dat, pq_path = root / "ml-1m" / "ratings.dat", root / "ml1m-raw" / "ratings_implicit.parquet"
  if dat.is_file():
    rows = _io.read_delimited(dat, "::", 4, (0, 1, 2, 3), what="UserID::MovieID::Rating::Timestamp")
    r = np.asarray(rows, np.int64).reshape(-1, 4)  # [N, 4]
    return r[:, 0], r[:, 1], r[:, 3], dat
  if not pq_path.is_file():
    raise JaxrecError(f"{NAME}: missing file(s) {dat} and {pq_path} (either will do); {HOW}")
  table = _io.read_parquet(pq_path, {"user_id": "int", "movie_id": "int"})
  u = table.column("user_id").to_numpy().astype(np.int64)
  i = table.column("movie_id").to_numpy().astype(np.int64)
  return u, i, np.full(len(u), -1, np.int64), pq_path


def build(root: pathlib.Path, cfg) -> schema.Dataset:
  user, movie, ts, source = _read_pairs(root)
  if not len(user):
    raise JaxrecError(f"{source}: no interactions")
  movies_path = next((p for p in (source.parent / "movies.dat", root / "ml-1m" / "movies.dat",
                                  root / "ml1m-raw" / "movies.dat") if p.is_file()), source.parent / "movies.dat")
  _io.require([movies_path], NAME, HOW)
  movies = read_movies(movies_path)
  ids = np.unique(movie)
  unknown = np.setdiff1d(ids, np.fromiter(movies, np.int64))
  if unknown.size:
    raise JaxrecError(f"{source}: movie id {int(unknown[0])} has no row in {movies_path}")
  item = np.searchsorted(ids, movie) + 1  # dense ids 1..n in ascending MovieLens id order
  f_train, f_valid, _ = cfg.split_fracs
  rng = np.random.default_rng(cfg.seed)
  file_order = np.arange(len(user))
  by_user = np.lexsort((ts, file_order, user)) if (ts < 0).all() else np.lexsort((file_order, ts, user))
  starts = np.flatnonzero(np.r_[True, user[by_user][1:] != user[by_user][:-1]])
  ends = np.r_[starts[1:], len(by_user)]
  part = {"train": [], "valid": [], "test": []}
  hist = {"train": [], "valid": [], "test": []}
  train_items = {}
  for s, e in zip(starts, ends):
    rows = by_user[s:e]  # this user's interactions in time (or file) order
    perm = rng.permutation(len(rows))
    a, b = int(len(rows) * f_train), int(len(rows) * f_train) + int(len(rows) * f_valid)
    is_train = np.zeros(len(rows), bool)
    is_train[perm[:a]] = True
    tr_rows = rows[is_train]  # time order kept
    tr_items = item[tr_rows]
    for k, r in enumerate(tr_rows):
      part["train"].append(r)
      hist["train"].append(tr_items[max(0, k - cfg.max_history):k])
    for name, sel in (("valid", perm[a:b]), ("test", perm[b:])):
      for r in rows[np.sort(sel)]:
        part[name].append(r)
        hist[name].append(tr_items[-cfg.max_history:])
    train_items[int(user[rows[0]])] = np.unique(tr_items)
  splits = {}
  for name in part:
    rows = np.asarray(part[name], np.int64)
    splits[name] = schema.make_split(user[rows], item[rows], np.ones(len(rows)), ts[rows], hist[name],
                                     cfg.max_history)
  for name in ("valid", "test"):
    splits[name].warm = schema.warm_flags(splits[name], splits["train"])
  item_text = [""] + [movies[int(m)][0] for m in ids]
  genres = [""] + [movies[int(m)][1] for m in ids]
  ds = schema.Dataset(NAME, splits, int(user.max()), len(ids), item_text, genres, train_items_by_user=train_items,
                      info=dict(source=str(source)))
  return schema.validate(ds, str(source))


def load(cfg, root: pathlib.Path) -> schema.Dataset:
  if not (root / "ml1m-raw" / "ratings_implicit.parquet").is_file():
    root = raw_ml1m(root / "ml-1m", cfg).parent  # under the root, in the download cache, or fetched there
  files = [p for p in (root / "ml-1m" / "ratings.dat", root / "ml1m-raw" / "ratings_implicit.parquet") if p.is_file()]
  if not files:
    _read_pairs(root)  # raises the missing-file error
  key = dict(files=schema.file_fingerprint(files[:1]), seed=cfg.seed, fracs=list(cfg.split_fracs),
             h=cfg.max_history)
  return schema.cached(NAME, key, lambda: build(root, cfg), cfg.use_cache)
