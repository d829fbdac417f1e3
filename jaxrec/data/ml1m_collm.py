"""MovieLens-1M in CoLLM's setting (the ML-1M AUC / UAUC table of CoLLM).

Protocol (CoLLM `dataset/ml-1m/processing_ood.ipynb`, github zyang1580/CoLLM):
  * ratings joined with movies.dat; month index = months since the month of the first rating (UTC);
  * months 14-23 train, 24-28 valid, 29-33 test (month 34 is dropped); label = rating >= 4;
  * rows sorted by (user, timestamp); history = the user's earlier positives in time order, including those of
    earlier splits; ids remapped to 1..n in order of first appearance, 0 = padding;
  * not_cold (our `warm`) = user and item both occur in train (all train rows are warm);
  * valid_small = `numpy.random.RandomState(2023).choice(len(valid), round(0.5 * len(valid)), replace=False)`,
    which is exactly the rows (and order) of pandas' `valid.sample(frac=0.5, random_state=2023)`.
Expected sizes: train 33,891 rows / 740 users / 3,087 items, valid 10,401, valid_small 5,200, test 7,331.

Sources, in this order (`source` = 'auto'): `<root>/ml1m-collm/{train,valid,valid_small}.parquet` (+ test.parquet
when present): CoLLM's released pickles converted column for column (uid, iid, label, timestamp, his, his_title,
title, flag, not_cold; `his` starts with the padding id 0; history kept as CoLLM made it, ties at the same second
included); else the official `<root>/ml-1m/ratings.dat` + `movies.dat` (GroupLens ml-1m.zip), preprocessed here
(`source` = 'raw'; history strictly earlier than the target unless `history_ties` = 'collm').
Genres (`item_genres`) come from movies.dat when one is found (`<root>/ml-1m/` or `<root>/ml1m-raw/`).
"""

from __future__ import annotations

import pathlib

import numpy as np

from jaxrec import paths
from jaxrec.data import _io, fetch, schema
from jaxrec.errors import JaxrecError

NAME = "ml1m_collm"
COLUMNS = {"uid": "int", "iid": "int", "label": "number", "timestamp": "int", "his": "list<int>",
           "his_title": "list<string>", "title": "string", "flag": "number", "not_cold": "number"}
HOW_PARQUET = ("expected CoLLM's ML-1M split as Parquet in <root>/ml1m-collm (see ../shared/data/README.md), or "
               "the official ratings.dat + movies.dat from https://files.grouplens.org/datasets/movielens/ml-1m.zip "
               "in <root>/ml-1m; set the root with --config.data.root or $JAXREC_DATA")
HOW_RAW = "unzip https://files.grouplens.org/datasets/movielens/ml-1m.zip into the data root (gives ml-1m/)"


def read_movies(path: pathlib.Path) -> dict[int, tuple[str, str]]:
  """movies.dat (`MovieID::Title::Genres`, ISO-8859-1) as {movie id: (title, genres with '|' as ', ')}."""
  rows = _io.read_delimited(path, "::", 3, int_fields=(0,), encoding="latin-1", what="MovieID::Title::Genres")
  return {int(r[0]): (r[1], r[2].replace("|", ", ")) for r in rows}


def _genres_by_title(root: pathlib.Path) -> dict[str, str]:
  for d in ("ml-1m", "ml1m-raw"):
    f = root / d / "movies.dat"
    if f.is_file():
      return {t: g for t, g in read_movies(f).values()}
  return {}


def _read_parquet(path: pathlib.Path, max_history: int):
  table = _io.read_parquet(path, COLUMNS)
  if table.num_rows == 0:
    raise JaxrecError(f"{path}: no rows; expected a non-empty CoLLM split")
  col = lambda c: table.column(c).combine_chunks()  # noqa: E731
  label = col("label").to_numpy(zero_copy_only=False)
  bad = np.flatnonzero((label != 0) & (label != 1))
  if bad.size:
    raise JaxrecError(f"{path}: row {int(bad[0])} has label {label[bad[0]]}; expected 0 or 1")
  his, his_title = col("his"), col("his_title")
  offsets = his.offsets.to_numpy()  # [N + 1]
  flat = his.values.to_numpy(zero_copy_only=False)
  flat_titles = his_title.values.to_pylist()
  histories = []
  for r in range(table.num_rows):
    h = flat[offsets[r]:offsets[r + 1]]
    histories.append(h[h != 0])  # CoLLM's lists start with the padding id 0
  titles = {}
  for i, t in zip(flat, flat_titles):
    titles[int(i)] = t
  for i, t in zip(col("iid").to_numpy(), col("title").to_pylist()):
    titles[int(i)] = t
  split = schema.make_split(col("uid").to_numpy(), col("iid").to_numpy(), label, col("timestamp").to_numpy(),
                            histories, max_history, warm=col("not_cold").to_numpy(zero_copy_only=False) == 1)
  return split, titles, max(int(flat.max()) if flat.size else 0, int(split.item.max()))


def from_parquet(folder: pathlib.Path, cfg) -> schema.Dataset:
  names = ["train", "valid", "valid_small"]
  _io.require([folder / f"{n}.parquet" for n in names], NAME, HOW_PARQUET)
  if (folder / "test.parquet").is_file():
    names.append("test")
  splits, titles, max_item = {}, {}, 0
  for n in names:
    splits[n], t, m = _read_parquet(folder / f"{n}.parquet", cfg.max_history)
    titles.update(t)
    max_item = max(max_item, m)
  n_users = max(int(s.user.max()) for s in splits.values())
  item_text = [titles.get(i, "") for i in range(max_item + 1)]
  item_text[0] = ""
  genres = _genres_by_title(folder.parent)
  ds = schema.Dataset(NAME, splits, n_users, max_item, item_text, [genres.get(t, "") for t in item_text],
                      info=dict(source=str(folder)))
  return schema.validate(ds, str(folder))


def month_index(timestamp: np.ndarray) -> np.ndarray:
  """Months since the month of the earliest timestamp (UTC), as CoLLM's `(year - y0) * 12 + month` minus its min."""
  months = timestamp.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)  # months since 1970-01
  return months - months.min()


def from_raw(ratings_path: pathlib.Path, movies_path: pathlib.Path, cfg) -> schema.Dataset:
  _io.require([ratings_path, movies_path], NAME, HOW_RAW)
  rows = _io.read_delimited(ratings_path, "::", 4, int_fields=(0, 1, 2, 3), what="UserID::MovieID::Rating::Timestamp")
  if not rows:
    raise JaxrecError(f"{ratings_path}: no ratings; expected UserID::MovieID::Rating::Timestamp lines")
  r = np.asarray(rows, np.int64)  # [N, 4]
  movies = read_movies(movies_path)
  r = r[np.isin(r[:, 1], np.fromiter(movies, np.int64))]  # CoLLM's inner join with movies.dat
  month = month_index(r[:, 3])
  split_id = np.full(len(r), -2)
  for sid, (lo, hi) in ((-1, cfg.train_months), (0, cfg.valid_months), (1, cfg.test_months)):
    split_id[(month >= lo) & (month <= hi)] = sid  # CoLLM's `flag`: -1 train, 0 valid, 1 test
  r, split_id = r[split_id > -2], split_id[split_id > -2]
  order = np.lexsort((r[:, 3], r[:, 0]))  # by user, then time; stable for ties
  r, split_id = r[order], split_id[order]
  label = (r[:, 2] >= cfg.label_min_rating).astype(np.float32)
  histories = schema.sequential_histories(r[:, 0], r[:, 1], label, r[:, 3], cfg.max_history,
                                          strict=cfg.get("history_ties", "strict") != "collm")
  user, _ = _io.remap(r[:, 0])
  item, item_orig = _io.remap(r[:, 1])
  new_id = {int(o): k for k, o in enumerate(item_orig) if k}
  histories = [np.asarray([new_id[int(i)] for i in h], np.int64) for h in histories]
  full = schema.make_split(user, item, label, r[:, 3], histories, cfg.max_history)
  splits = {}
  for name, sid in (("train", -1), ("valid", 0), ("test", 1)):
    splits[name] = full.take(np.flatnonzero(split_id == sid))
  for name in ("valid", "test"):
    splits[name].warm = schema.warm_flags(splits[name], splits["train"])
  v = len(splits["valid"])
  pick = np.random.RandomState(2023).choice(v, int(round(cfg.valid_small_frac * v)), replace=False)
  splits["valid_small"] = splits["valid"].take(pick)
  item_text = [""] + [movies[int(o)][0] for o in item_orig[1:]]
  genres = [""] + [movies[int(o)][1] for o in item_orig[1:]]
  ds = schema.Dataset(NAME, splits, int(user.max()), int(item.max()), item_text, genres,
                      info=dict(source=str(ratings_path)))
  return schema.validate(ds, str(ratings_path))


def raw_ml1m(raw_dir: pathlib.Path, cfg) -> pathlib.Path:
  """The official ML-1M files: under the root, else in the download cache, else GroupLens' ml-1m.zip fetched there
  (SHA-256 pinned). With `fetch` off, `raw_dir` as it is (the missing-file error names it)."""
  if (raw_dir / "ratings.dat").is_file() or not cfg.get("fetch", True):
    return raw_dir
  cache = paths.cache_dir() / "downloads" / "ml-1m"
  if (cache / "ratings.dat").is_file():
    return fetch.verified(cache)
  return fetch.fetch("ml-1m", fetch.ML1M_ZIP, cache, f"{HOW_RAW}, or {HOW_PARQUET}")


def load(cfg, root: pathlib.Path) -> schema.Dataset:
  parquet_dir, raw_dir = root / "ml1m-collm", root / "ml-1m"
  if not parquet_dir.is_dir() and cfg.source != "parquet":  # no CoLLM split given: the official files
    raw_dir = raw_ml1m(raw_dir, cfg)
  source = cfg.source
  if source == "auto":
    source = "parquet" if (parquet_dir / "train.parquet").is_file() or not (raw_dir / "ratings.dat").is_file() \
        else "raw"
  if source == "parquet":
    return from_parquet(parquet_dir, cfg)  # fast enough to read directly: no cache
  if source != "raw":
    raise JaxrecError(f"config data.source={source!r} for {NAME}; expected 'auto', 'parquet' or 'raw'")
  files = [raw_dir / "ratings.dat", raw_dir / "movies.dat"]
  _io.require(files, NAME, HOW_RAW)
  key = dict(files=schema.file_fingerprint(files), max_history=cfg.max_history, months=[
      list(cfg.train_months), list(cfg.valid_months), list(cfg.test_months)], label=cfg.label_min_rating,
             frac=cfg.valid_small_frac, ties=cfg.get("history_ties", "strict"))
  return schema.cached(NAME, key, lambda: from_raw(*files, cfg), cfg.use_cache)


def read_split(path: pathlib.Path, ds: schema.Dataset, cfg) -> schema.Split:
  """A split file in CoLLM's Parquet format (`launch/evaluate.py --split=FILE`, e.g. its held-out test split): its
  own ids, histories and not_cold flags; titles of items the dataset never had go to `item_text_extra`."""
  split, titles, _ = _read_parquet(path, int(cfg.max_history))
  split.item_text_extra = {i: t for i, t in titles.items() if i > ds.n_items and t}
  return split
