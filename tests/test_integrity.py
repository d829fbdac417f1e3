"""Nothing silently wrong: checksummed cached assets, metrics that refuse non-finite scores, Parquet type checks."""

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from jaxrec import evaluate, metrics, paths
from jaxrec.data import _io, fetch, schema
from jaxrec.errors import JaxrecError


def test_verify_file_hashes_once_then_on_change(tmp_path, monkeypatch):
  f = tmp_path / "asset.bin"
  f.write_bytes(b"x" * 1000)
  digest = paths.sha256_file(f)
  calls = []
  real = paths.sha256_file
  monkeypatch.setattr(paths, "sha256_file", lambda p: calls.append(p) or real(p))
  assert paths.verify_file(f, digest) == f and len(calls) == 1
  assert (tmp_path / ".asset.bin.stamp.json").is_file()
  paths.verify_file(f, digest)
  assert len(calls) == 1  # size and mtime unchanged: the stamp is trusted
  with open(f, "r+b") as h:  # same size, new bytes and mtime
    h.seek(500)
    h.write(b"y")
  os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
  with pytest.raises(JaxrecError) as e:
    paths.verify_file(f, digest)
  assert len(calls) == 2 and "\n" not in str(e.value)
  assert str(e.value).startswith(f"{f}: SHA-256") and "delete it and re-run" in str(e.value)


def test_verify_file_without_a_pinned_sum_uses_the_recorded_one(tmp_path):
  f = tmp_path / "u.data"
  f.write_text("1\t2\t3\t4\n")
  paths.record_file(f)
  paths.verify_file(f)
  f.write_text("1\t2\t3\t5\n")  # same size; mtime moves on
  os.utime(f, ns=(0, f.stat().st_mtime_ns + 10**9))
  with pytest.raises(JaxrecError, match="u.data: SHA-256"):
    paths.verify_file(f)


def test_ml100k_download_cache_is_verified(tmp_path):
  cache = tmp_path / "ml-100k"
  cache.mkdir()
  f = cache / "u.data"
  f.write_text("1\t2\t5\t881250949\n")
  paths.record_file(f)  # as `ml100k.fetch` does
  fetch.verified(cache)
  f.write_text("1\t2\t1\t881250949\n")
  os.utime(f, ns=(0, f.stat().st_mtime_ns + 10**9))
  with pytest.raises(JaxrecError, match="u.data: SHA-256 .* does not match"):
    fetch.verified(cache)


def test_corrupted_dataset_cache_is_rebuilt_not_trusted(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXREC_CACHE", str(tmp_path / "cache"))
  rng = np.random.default_rng(0)
  n = 400
  split = schema.make_split(rng.integers(1, 11, n), rng.integers(1, 9, n), rng.integers(0, 2, n).astype(np.float32),
                            np.arange(n), [[1, 2]] * n, 4)
  ds = schema.Dataset("syn", {"train": split}, 10, 8, [""] * 9, [""] * 9)
  builds = []
  build = lambda: builds.append(1) or ds  # noqa: E731
  schema.cached("syn", {"k": 1}, build)
  schema.cached("syn", {"k": 1}, build)
  assert len(builds) == 1
  npz = schema.cache_path("syn", {"k": 1}) / "train.npz"
  data = bytearray(npz.read_bytes())
  data[len(data) // 2] ^= 0xFF  # one flipped byte inside an array: np.load alone would not notice
  npz.write_bytes(bytes(data))
  os.utime(npz, ns=(0, npz.stat().st_mtime_ns + 10**9))
  again = schema.cached("syn", {"k": 1}, build)
  assert len(builds) == 2 and not again.info.get("from_cache")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_metrics_refuse_non_finite_scores(bad):
  labels = np.array([0, 1, 0, 1, 1])
  users = np.array([1, 1, 2, 2, 2])
  scores = np.array([0.1, 0.9, 0.3, bad, 0.5])
  assert metrics.auc(labels, np.nan_to_num(scores, posinf=2, neginf=-2)) == pytest.approx(
      roc_auc_score(labels, np.nan_to_num(scores, posinf=2, neginf=-2)), abs=1e-12)
  for fn in (lambda: metrics.auc(labels, scores), lambda: metrics.uauc(users, labels, scores),
             lambda: metrics.gauc(users, labels, scores)):
    with pytest.raises(metrics.NonFiniteScores, match="1 of 5 scores are not finite"):
      fn()
  with pytest.raises(ValueError, match="not finite"):
    metrics.top_k_from_scores(np.array([[0.0, 1.0, bad, 0.2]]), 2)
  with pytest.raises(JaxrecError) as e:
    evaluate.ctr_metrics(users, labels, scores)
  assert "\n" not in str(e.value) and "first at index 3" in str(e.value) and "diverged" in str(e.value)


def test_read_parquet_checks_types_and_nulls(tmp_path):
  f = tmp_path / "t.parquet"
  spec = {"a": "int", "b": "list<int>", "c": "string"}
  pq.write_table(pa.table({"a": [1, 2], "b": [[1], [2, 3]], "c": ["x", "y"]}), f)
  assert _io.read_parquet(f, spec).num_rows == 2
  cases = [
      (pa.table({"a": [1.5, 2.0], "b": [[1], [2]], "c": ["x", "y"]}), "column 'a' has type double; expected int"),
      (pa.table({"a": [1, None], "b": [[1], [2]], "c": ["x", "y"]}), "column 'a' row 1 is null"),
      (pa.table({"a": [1, 2], "b": [[1], None], "c": ["x", "y"]}), "column 'b' row 1 is null"),
      (pa.table({"a": [1, 2], "b": [[1], [2, None]], "c": ["x", "y"]}), "column 'b' row 1 holds a null element"),
      (pa.table({"a": [1, 2], "b": [["1"], ["2"]], "c": ["x", "y"]}),
       "column 'b' has type list<element: string>; expected list<int>"),
      (pa.table({"a": [1, 2], "b": [[1], [2]], "c": [1, 2]}), "column 'c' has type int64; expected string"),
  ]
  for table, expect in cases:
    pq.write_table(table, f)
    with pytest.raises(JaxrecError) as e:
      _io.read_parquet(f, spec)
    assert str(e.value).startswith(f"{f}: {expect}") and "\n" not in str(e.value), str(e.value)
