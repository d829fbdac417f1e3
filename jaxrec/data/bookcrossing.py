"""BookCrossing in TALLRec's setting (the TALLRec BookCrossing table).

TALLRec protocol (`preprocess_book.py`, github SAI990323/TALLRec): BX-Book-Ratings joined with BX-Books on ISBN;
users with > 3 ratings; users shuffled and split 8:1:1 (user-disjoint); per user the ratings are shuffled, the
last one is the target and up to 10 of the others are the history; label = rating > 5 (implicit 0 ratings count as
"not liked", as in TALLRec). TALLRec's prompt lists liked history books as "User Preference" and the others as
"User Unpreference"; a book is shown as `"<title>" written by <author>` (our `item_text`; `quote_titles` is off).

Sources (`source` = 'auto' takes the first present):
  * 'tallrec_json': `<root>/bookcrossing-tallrec/valid.json`, TALLRec's processed records
    (`{"instruction", "input", "output"}`, 2,427 here). They carry no ids: items are identified by (title, author)
    and numbered 1..n in sorted order of that pair, so ids do not depend on the seed; `user` is 0. Since TALLRec's
    train.json is not available, this pool is split with `seed`: the first `valid_size` records of a seeded
    permutation are `valid`, the next `train_shots` (16 / 64 / 256, or -1 = all the rest) are `train`; the two are
    disjoint and `valid` is the same for every shot count. `pool` holds all records in file order. When a
    train.json (and test.json) sits next to valid.json, TALLRec's own split is used instead: shots are drawn from
    train.json, valid.json is `valid`.
  * 'raw': `<root>/book-crossing/BX-Book-Ratings.csv` + `BX-Books.csv` (the official BX-CSV-Dump.zip; `;`-separated,
    ISO-8859-1, quoted), preprocessed as above with `seed` for both shuffles; user and item ids are kept (remapped
    1..n by first appearance) because CoLLM needs them. `train_shots` > 0 subsamples train the same way.
History has no time order here (TALLRec shuffles); `history_label` marks liked (1) / disliked (0) history books,
timestamps are -1, and `warm` = the target book occurs in train (users are disjoint by construction).
"""

from __future__ import annotations

import csv
import io
import json
import pathlib
import re

import numpy as np

from jaxrec import paths
from jaxrec.data import _io, fetch, schema
from jaxrec.errors import JaxrecError

NAME = "bookcrossing"
HOW_JSON = ("expected TALLRec's processed data/book/valid.json (github SAI990323/TALLRec) in "
            "<root>/bookcrossing-tallrec, or the raw BX-Book-Ratings.csv + BX-Books.csv (BX-CSV-Dump.zip) in "
            "<root>/book-crossing; set the root with --config.data.root or $JAXREC_DATA")
HOW_RAW = "unzip the official BX-CSV-Dump.zip (Book-Crossing dataset) into <root>/book-crossing"
_INPUT_RE = re.compile(r"User Preference: (.*)\nUser Unpreference: (.*)\n"
                       r"Whether the user will like the target book \"(.*)\"\?", re.S)
_BOOK_RE = re.compile(r'"(.*?)" written by (.*?)(?=, "|$)', re.S)
_OUTPUTS = {"Yes.": 1.0, "No.": 0.0}


def book_text(title: str, author: str) -> str:
  return f'"{title}" written by {author}'


def _parse_books(text: str, where: str) -> list[tuple[str, str]]:
  books = [(m.group(1), m.group(2)) for m in _BOOK_RE.finditer(text)]
  if ", ".join(book_text(*b) for b in books) != text:
    raise JaxrecError(f'{where}: cannot split {text[:60]!r}... into "<title>" written by <author> items joined '
                      f'by ", "')
  return books


def read_tallrec_json(path: pathlib.Path) -> list[tuple[list, list, tuple, float]]:
  """TALLRec records as (liked books, disliked books, target book, label); books are (title, author) pairs."""
  try:
    records = json.loads(_io.read_text(path))
  except json.JSONDecodeError as e:
    raise JaxrecError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
  if not isinstance(records, list) or not records:
    raise JaxrecError(f"{path}: expected a non-empty JSON list of {{instruction, input, output}} records")
  out = []
  for k, rec in enumerate(records):
    where = f"{path} record {k}"
    if not isinstance(rec, dict) or set(rec) != {"instruction", "input", "output"}:
      keys = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
      raise JaxrecError(f"{where}: has fields {keys}; expected exactly instruction, input, output")
    bad = next((k for k in ("instruction", "input", "output") if not isinstance(rec[k], str)), None)
    if bad is not None:
      raise JaxrecError(f"{where}: field {bad!r} is {type(rec[bad]).__name__}; expected a string")
    if rec["output"] not in _OUTPUTS:
      raise JaxrecError(f'{where}: output {rec["output"]!r}; expected "Yes." or "No." (label outside {{0, 1}})')
    m = _INPUT_RE.fullmatch(rec["input"])
    if not m:
      raise JaxrecError(f"{where}: input does not match 'User Preference: ...\\nUser Unpreference: ...\\nWhether "
                        f"the user will like the target book \"...\"?'")
    liked = _parse_books(m.group(1), where) if m.group(1) else []
    disliked = _parse_books(m.group(2), where) if m.group(2) else []
    target = _parse_books(m.group(3), where)
    if len(target) != 1:
      raise JaxrecError(f"{where}: expected one target book, found {len(target)}")
    out.append((liked, disliked, target[0], _OUTPUTS[rec["output"]]))
  return out


def _records_to_split(records, ids: dict, max_history: int) -> schema.Split:
  hist = [[ids[b] for b in liked + disliked] for liked, disliked, _, _ in records]
  hlab = [[1] * len(liked) + [0] * len(disliked) for liked, disliked, _, _ in records]
  n = len(records)
  return schema.make_split(np.zeros(n), [ids[t] for _, _, t, _ in records], [lab for *_, lab in records],
                           np.full(n, -1), hist, max_history, history_labels=hlab)


def _draw(n: int, seed: int, first: int, second: int, field: str) -> tuple[np.ndarray, np.ndarray]:
  """Disjoint seeded draws of `first` and `second` (-1 = all the rest) rows out of n, each in original order."""
  if first < 0 or first > n or (second > 0 and first + second > n):
    raise JaxrecError(f"config data.{field}: cannot draw {first} + {second} disjoint rows from {n}")
  perm = np.random.default_rng(seed).permutation(n)
  rest = perm[first:] if second < 0 else perm[first:first + second]
  return np.sort(perm[:first]), np.sort(rest)


def _item_warm(split: schema.Split, train: schema.Split) -> np.ndarray:
  seen = np.union1d(train.item, train.history[train.history > 0])
  return np.isin(split.item, seen)


def from_json(folder: pathlib.Path, cfg) -> schema.Dataset:
  valid_path = folder / "valid.json"
  _io.require([valid_path], NAME, HOW_JSON)
  has_train = (folder / "train.json").is_file()
  parts = {"pool": read_tallrec_json(valid_path)}
  if has_train:
    parts["train_full"] = read_tallrec_json(folder / "train.json")
    if (folder / "test.json").is_file():
      parts["test"] = read_tallrec_json(folder / "test.json")
  keys = sorted({b for recs in parts.values() for li, di, t, _ in recs for b in li + di + [t]})
  ids = {b: k + 1 for k, b in enumerate(keys)}  # stable: depends on the books only
  pool = _records_to_split(parts["pool"], ids, cfg.max_history)
  splits = {"pool": pool}
  if has_train:
    full = _records_to_split(parts["train_full"], ids, cfg.max_history)
    _, shots = _draw(len(full), cfg.seed, 0, cfg.train_shots, "train_shots")
    splits["train"], splits["valid"] = full.take(shots), pool
    if "test" in parts:
      splits["test"] = _records_to_split(parts["test"], ids, cfg.max_history)
  else:
    valid_rows, train_rows = _draw(len(pool), cfg.seed, cfg.valid_size, cfg.train_shots, "valid_size/train_shots")
    splits["train"], splits["valid"] = pool.take(train_rows), pool.take(valid_rows)
  for name, sp in splits.items():
    sp.warm = _item_warm(sp, splits["train"])
  item_text = [""] + [book_text(*b) for b in keys]
  ds = schema.Dataset(NAME, splits, 0, len(keys), item_text, [""] * len(item_text), quote_titles=False,
                      info=dict(source=str(valid_path), records=len(pool)))
  return schema.validate(ds, str(valid_path))


def _csv_rows(path: pathlib.Path, header: list[str], n_fields: int, skip_bad: bool):
  """Yields (line number, fields) of a BX CSV; checks the header; bad field counts are skipped or raised."""
  reader = csv.reader(io.StringIO(_io.read_text(path, "latin-1")), delimiter=";", quotechar='"')
  first = next(reader, None)
  if first is None or first[:len(header)] != header:
    raise JaxrecError(f"{path}: header {first!r}; expected columns starting with {header}")
  for fields in reader:
    if len(fields) != n_fields:
      if skip_bad:
        continue
      raise JaxrecError(f"{path}:{reader.line_num}: expected {n_fields} ';'-separated quoted fields, "
                        f"got {len(fields)}")
    yield reader.line_num, fields


def from_raw(folder: pathlib.Path, cfg) -> schema.Dataset:
  ratings_path, books_path = folder / "BX-Book-Ratings.csv", folder / "BX-Books.csv"
  _io.require([ratings_path, books_path], NAME, HOW_RAW)
  books = {}
  for _, f in _csv_rows(books_path, ["ISBN", "Book-Title", "Book-Author"], 8, cfg.skip_bad_book_rows):
    books.setdefault(f[0], (f[1], f[2]))
  by_user: dict[str, list] = {}
  for line, (user, isbn, rating) in _csv_rows(ratings_path, ["User-ID", "ISBN", "Book-Rating"], 3, False):
    if not rating.isdigit():
      raise JaxrecError(f"{ratings_path}:{line}: Book-Rating {rating!r}; expected an integer 0-10")
    if isbn in books:  # TALLRec's inner join with BX-Books
      by_user.setdefault(user, []).append((isbn, int(rating)))
  users = [u for u, r in by_user.items() if len(r) >= cfg.min_user_ratings]
  if not users:
    raise JaxrecError(f"{ratings_path}: no user has >= {cfg.min_user_ratings} ratings of known books")
  perm = np.random.default_rng(cfg.seed).permutation(len(users))
  n = len(users)
  cuts = {"train": perm[:int(n * 0.8)], "valid": perm[int(n * 0.8):int(n * 0.9)], "test": perm[int(n * 0.9):]}
  isbn_id: dict[str, int] = {}
  user_id = {u: k + 1 for k, u in enumerate(users)}
  splits = {}
  for name, idx in cuts.items():
    rows = dict(user=[], item=[], label=[], hist=[], hlab=[])
    for k in np.sort(idx):
      u = users[k]
      ratings = by_user[u]
      order = np.random.default_rng([cfg.seed, k]).permutation(len(ratings))  # TALLRec: per-user shuffle
      shuffled = [ratings[j] for j in order]
      ids = [isbn_id.setdefault(isbn, len(isbn_id) + 1) for isbn, _ in shuffled]
      likes = [int(r >= cfg.label_min_rating) for _, r in shuffled]
      rows["user"].append(user_id[u])
      rows["item"].append(ids[-1])
      rows["label"].append(likes[-1])
      rows["hist"].append(ids[:-1][:10])
      rows["hlab"].append(likes[:-1][:10])
    m = len(rows["item"])
    if m == 0:
      raise JaxrecError(f"{ratings_path}: split {name!r} is empty; expected more users with enough ratings")
    splits[name] = schema.make_split(rows["user"], rows["item"], rows["label"], np.full(m, -1), rows["hist"],
                                     cfg.max_history, history_labels=rows["hlab"])
  if cfg.train_shots > 0:
    _, shots = _draw(len(splits["train"]), cfg.seed, 0, cfg.train_shots, "train_shots")
    splits["train"] = splits["train"].take(shots)
  for sp in splits.values():
    sp.warm = _item_warm(sp, splits["train"])
  by_id = sorted(isbn_id.items(), key=lambda kv: kv[1])
  item_text = [""] + [book_text(*books[isbn]) for isbn, _ in by_id]
  ds = schema.Dataset(NAME, splits, len(users), len(isbn_id), item_text, [""] * len(item_text), quote_titles=False,
                      info=dict(source=str(ratings_path)))
  return schema.validate(ds, str(ratings_path))


def _json_folder(json_dir: pathlib.Path, cfg) -> pathlib.Path:
  """TALLRec's files under the root, else in the download cache, else fetched there (train, valid and test)."""
  if (json_dir / "valid.json").is_file() or not cfg.get("fetch", True):
    return json_dir
  cache = paths.cache_dir() / "downloads" / "bookcrossing-tallrec"
  if (cache / "valid.json").is_file():
    return fetch.verified(cache)
  return fetch.fetch(NAME, fetch.TALLREC_BOOK, cache, f"{HOW_JSON} (or set JAXREC_DATA / --config.data.root)")


def load(cfg, root: pathlib.Path) -> schema.Dataset:
  json_dir, raw_dir = root / "bookcrossing-tallrec", root / "book-crossing"
  source = cfg.source
  if source == "auto":
    source = "raw" if not (json_dir / "valid.json").is_file() and (raw_dir / "BX-Book-Ratings.csv").is_file() \
        else "tallrec_json"
  if source == "tallrec_json":
    return from_json(_json_folder(json_dir, cfg), cfg)
  if source != "raw":
    raise JaxrecError(f"config data.source={source!r} for {NAME}; expected 'auto', 'tallrec_json' or 'raw'")
  files = [raw_dir / "BX-Book-Ratings.csv", raw_dir / "BX-Books.csv"]
  _io.require(files, NAME, HOW_RAW)
  key = dict(files=schema.file_fingerprint(files), seed=cfg.seed, shots=cfg.train_shots, h=cfg.max_history,
             min=cfg.min_user_ratings, label=cfg.label_min_rating, skip=cfg.skip_bad_book_rows)
  return schema.cached(NAME, key, lambda: from_raw(raw_dir, cfg), cfg.use_cache)


def read_split(path: pathlib.Path, ds: schema.Dataset, cfg) -> schema.Split:
  """A split file in TALLRec's record format (its data/book/{train,valid,test}.json: `launch/evaluate.py
  --split=FILE`). Books are matched to the dataset's ids by title and author (`item_text`); a book the dataset never
  had gets a new id after `ds.n_items`, its text kept in `item_text_extra`, so a TALLRec prompt can still name it
  (CF models give it no score of their own). Rows keep the file's order; `warm` = the target book occurs in train."""
  records = read_tallrec_json(path)
  by_text = {t: i for i, t in enumerate(ds.item_text) if i}
  ids, extra = {}, {}
  for liked, disliked, target, _ in records:
    for book in liked + disliked + [target]:
      if book not in ids:
        text = book_text(*book)
        if text not in by_text:
          by_text[text] = ds.n_items + 1 + len(extra)
          extra[by_text[text]] = text
        ids[book] = by_text[text]
  split = _records_to_split(records, ids, cfg.max_history)
  split.warm = _item_warm(split, ds.splits["train"])
  split.item_text_extra = extra
  return split
