"""Amazon-Book in CoLLM's setting (CoLLM's Amazon-Book AUC / UAUC table).

Protocol (CoLLM `dataset/amazon_book/processing_ood.ipynb`): reviews (`reviewerID`, `asin`, `overall`,
`unixReviewTime`) joined with the metadata's `title` on `asin` (metadata de-duplicated by asin, last kept); only
reviews of `year` (2017, UTC); users and items with > 20 ratings in that year are kept (both counted once, before
either filter); label = 5 stars; ids 1..n by first appearance in metadata order; months 1-11 train, December sorted
by time and cut in half: first half valid, second half test; history = the user's earlier positives in time order
(strictly earlier unless `history_ties` = 'collm'); `warm` = user and item occur in train; valid_small = a 25%
sample of valid drawn like pandas' `sample(frac=0.25, random_state=2023)`.
CoLLM's run had 727,463 / 25,747 / 25,747 rows, 22,966 users and 34,153 items.

Files: `<root>/amazon-book/` holds the review file (`Books_5.json.gz`, `Books_5.json`, `Books.json.gz` or
`Books.json`, first found) and `meta_Books.json.gz` or `meta_Books.json`: the JSON-lines files of the Amazon Review
Data (2018) release (https://nijianmo.github.io/amazon/index.html). The result is cached (npz, atomically).
"""

from __future__ import annotations

import gzip
import json
import pathlib

import numpy as np

from jaxrec import paths
from jaxrec.data import _io, fetch, schema
from jaxrec.errors import JaxrecError

NAME = "amazon_book"
REVIEW_FILES = ("Books_5.json.gz", "Books_5.json", "Books.json.gz", "Books.json")
META_FILES = ("meta_Books.json.gz", "meta_Books.json")
REVIEW_KEYS = ("reviewerID", "asin", "overall", "unixReviewTime")
HOW = ("download the Books reviews and metadata (JSON lines) of the Amazon Review Data (2018) release, "
       "https://nijianmo.github.io/amazon/index.html, into <root>/amazon-book")


def _first(folder: pathlib.Path, names) -> pathlib.Path:
  for n in names:
    if (folder / n).is_file():
      return folder / n
  return folder / names[0]


def _json_lines(path: pathlib.Path):
  """Yields (line number, record) of a JSON-lines file, gzip or plain; a bad line is an error naming it."""
  opener = gzip.open if path.suffix == ".gz" else open
  with opener(path, "rt", encoding="utf-8") as f:
    for no, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        rec = json.loads(line)
      except json.JSONDecodeError as e:
        raise JaxrecError(f"{path}:{no}: invalid JSON ({e.msg}); expected one JSON object per line") from None
      if not isinstance(rec, dict):
        raise JaxrecError(f"{path}:{no}: expected a JSON object, got {type(rec).__name__}")
      yield no, rec


def _reviews(path: pathlib.Path):
  """Yields (reviewerID, asin, overall, unixReviewTime) of a review file; a record without them, or with an empty id
  or a non-numeric rating / time, is an error naming its line."""
  for no, rec in _json_lines(path):
    missing = [k for k in REVIEW_KEYS if k not in rec]
    if missing:
      raise JaxrecError(f"{path}:{no}: missing field(s) {', '.join(missing)}; expected {REVIEW_KEYS}")
    for key in ("reviewerID", "asin"):
      if not isinstance(rec[key], str) or not rec[key]:
        raise JaxrecError(f"{path}:{no}: field {key!r} is {rec[key]!r}; expected a non-empty string")
    try:
      yield rec["reviewerID"], rec["asin"], float(rec["overall"]), int(rec["unixReviewTime"])
    except (TypeError, ValueError):
      raise JaxrecError(f"{path}:{no}: overall / unixReviewTime not numeric") from None


def build(reviews_path: pathlib.Path, meta_path: pathlib.Path, cfg) -> schema.Dataset:
  titles: dict[str, str] = {}
  meta_pos: dict[str, int] = {}
  for no, rec in _json_lines(meta_path):
    if not isinstance(rec.get("asin"), str) or not rec["asin"]:
      raise JaxrecError(f"{meta_path}:{no}: field 'asin' is {rec.get('asin')!r}; expected a non-empty string "
                        f"(Amazon metadata records)")
    titles[rec["asin"]] = str(rec.get("title") or "")
    meta_pos.pop(rec["asin"], None)  # drop_duplicates(keep='last'): the last record's position counts
    meta_pos[rec["asin"]] = len(meta_pos)
  lo = np.datetime64(f"{cfg.year}-01-01T00:00:00").astype("datetime64[s]").astype(np.int64)
  hi = np.datetime64(f"{cfg.year + 1}-01-01T00:00:00").astype("datetime64[s]").astype(np.int64)
  users, items, ratings, times = [], [], [], []
  for reviewer, asin, r, t in _reviews(reviews_path):
    if lo <= t < hi and asin in meta_pos:
      users.append(reviewer)
      items.append(asin)
      ratings.append(r)
      times.append(t)
  if not users:
    raise JaxrecError(f"{reviews_path}: no {cfg.year} reviews of items in {meta_path.name}")
  users, items = np.asarray(users), np.asarray(items)
  ratings, times = np.asarray(ratings), np.asarray(times, np.int64)
  order = np.argsort(np.fromiter((meta_pos[a] for a in items), np.int64, len(items)), kind="stable")  # merge order
  users, items, ratings, times = users[order], items[order], ratings[order], times[order]
  _, uinv, ucount = np.unique(users, return_inverse=True, return_counts=True)
  _, iinv, icount = np.unique(items, return_inverse=True, return_counts=True)
  keep = (ucount[uinv] >= cfg.min_count) & (icount[iinv] >= cfg.min_count)
  users, items, ratings, times = users[keep], items[keep], ratings[keep], times[keep]
  if not len(users):
    raise JaxrecError(f"{reviews_path}: no users and items with >= {cfg.min_count} ratings in {cfg.year}")
  uid, user_orig = _io.remap(users)
  iid, item_orig = _io.remap(items)
  label = (ratings >= cfg.label_min_rating).astype(np.float32)
  month = times.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12 + 1
  flag = np.where(month <= 11, -1, 0)
  dec = np.flatnonzero(flag == 0)
  dec = dec[np.argsort(times[dec], kind="stable")]
  flag[dec[len(dec) // 2:]] = 1  # second half of December: test
  rows = np.lexsort((times, uid))
  uid, iid, label, times, flag = uid[rows], iid[rows], label[rows], times[rows], flag[rows]
  histories = schema.sequential_histories(uid, iid, label, times, cfg.max_history,
                                          strict=cfg.get("history_ties", "strict") != "collm")
  full = schema.make_split(uid, iid, label, times, histories, cfg.max_history)
  splits = {name: full.take(np.flatnonzero(flag == f)) for name, f in (("train", -1), ("valid", 0), ("test", 1))}
  for name in ("valid", "test"):
    splits[name].warm = schema.warm_flags(splits[name], splits["train"])
  v = len(splits["valid"])
  splits["valid_small"] = splits["valid"].take(
      np.random.RandomState(2023).choice(v, int(round(cfg.valid_small_frac * v)), replace=False))
  item_text = [""] + [titles[a] for a in item_orig[1:]]
  ds = schema.Dataset(NAME, splits, int(uid.max()), int(iid.max()), item_text, [""] * len(item_text),
                      info=dict(source=str(reviews_path), user_keys=[str(u) for u in user_orig[1:]],
                                item_keys=[str(a) for a in item_orig[1:]]))  # reviewerID / asin of ids 1..n
  return schema.validate(ds, str(reviews_path))


def load(cfg, root: pathlib.Path) -> schema.Dataset:
  folder = root / "amazon-book"
  if not (_first(folder, REVIEW_FILES).is_file() and _first(folder, META_FILES).is_file()) and cfg.get("fetch", True):
    cache = paths.cache_dir() / "downloads" / "amazon-book"
    have = (cache / "Books_5.json.gz").is_file() and (cache / "meta_Books.json.gz").is_file()
    folder = fetch.verified(cache) if have else fetch.fetch(NAME, fetch.AMAZON_BOOKS, cache, HOW, timeout_s=60.0)
  files = [_first(folder, REVIEW_FILES), _first(folder, META_FILES)]
  _io.require(files, NAME, HOW)
  key = dict(v=2, files=schema.file_fingerprint(files), year=cfg.year,  # v2: info keeps the id keys min=cfg.min_count, h=cfg.max_history,
             label=cfg.label_min_rating, frac=cfg.valid_small_frac, ties=cfg.get("history_ties", "strict"))
  return schema.cached(NAME, key, lambda: build(*files, cfg), cfg.use_cache)


def read_split(path: pathlib.Path, ds: schema.Dataset, cfg) -> schema.Split:
  """A split file in the Amazon reviews' own format (JSON lines with reviewerID, asin, overall, unixReviewTime;
  gzip or plain: `launch/evaluate.py --split=FILE`). Reviewers and books map to the dataset's ids; ones it never had
  get new ids after its own (no title: a CoLLM / TALLRec prompt cannot name such a book, CF models give it no score
  of their own); label = overall >= `label_min_rating`; histories from everything the dataset and the file know."""
  if "item_keys" not in ds.info:
    raise JaxrecError(f"{path}: the cached {NAME} dataset predates split files; rebuild it with "
                      f"--config.data.use_cache=False")
  users = {k: i + 1 for i, k in enumerate(ds.info["user_keys"])}
  items = {k: i + 1 for i, k in enumerate(ds.info["item_keys"])}
  rows = []
  for reviewer, asin, r, t in _reviews(path):
    u = users.setdefault(reviewer, ds.n_users + 1 + len(users) - len(ds.info["user_keys"]))
    i = items.setdefault(asin, ds.n_items + 1 + len(items) - len(ds.info["item_keys"]))
    rows.append((u, i, float(r >= cfg.label_min_rating), t))
  if not rows:
    raise JaxrecError(f"{path}: no reviews; expected JSON lines with {', '.join(REVIEW_KEYS)}")
  user, item, label, time = (np.asarray(c) for c in zip(*rows))
  return schema.split_from_rows(ds, user, item, label, time, cfg.max_history,
                                strict=cfg.get("history_ties", "strict") != "collm")
