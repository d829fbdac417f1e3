"""The dataset cache's round trip, and its memory: the per-user training items come back as views of ONE array.

Reading the npz member once per user (the bug) read and kept a full copy of the whole item array per user:
O(users × interactions), ~23 GB for ML-1M top-K."""

import numpy as np

from jaxrec.data import schema


def _split(n: int) -> schema.Split:
  z = np.zeros(n, np.int64)
  return schema.Split(user=np.arange(1, n + 1), item=np.arange(1, n + 1), label=np.ones(n, np.float32), timestamp=z,
                      history=np.zeros((n, 2), np.int64), history_len=z, history_label=np.zeros((n, 2), np.int8),
                      warm=np.ones(n, bool))


def test_train_items_by_user_round_trip_shares_one_array(tmp_path):
  by_user = {u: np.arange(u, 3 * u, dtype=np.int64) for u in range(1, 40)}
  ds = schema.Dataset("toy", {"train": _split(5)}, 39, 120, [""] * 121, [""] * 121, train_items_by_user=by_user)
  schema.save(ds, tmp_path / "cache")
  back = schema.load(tmp_path / "cache")
  assert back.train_items_by_user.keys() == by_user.keys()
  for u, items in by_user.items():
    np.testing.assert_array_equal(back.train_items_by_user[u], items)
  views = list(back.train_items_by_user.values())
  assert all(v.base is not None for v in views) and len({id(v.base) for v in views}) == 1
  np.testing.assert_array_equal(back.splits["train"].item, ds.splits["train"].item)


def test_one_file_reached_by_relative_absolute_or_linked_path_has_one_cache_key(tmp_path, monkeypatch):
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "ratings.dat").write_text("1::2::5::0\n")
  (tmp_path / "link").symlink_to(tmp_path / "data")
  monkeypatch.chdir(tmp_path)
  import pathlib
  keys = [schema.cache_path("ml", {"files": schema.file_fingerprint([pathlib.Path(p) / "ratings.dat"])})
          for p in ("data", tmp_path / "data", "link", "./link/../data")]
  assert len(set(keys)) == 1
  (tmp_path / "data" / "ratings.dat").write_text("1::2::5::0\n1::3::4::0\n")  # other contents: another cache
  assert schema.cache_path("ml", {"files": schema.file_fingerprint([tmp_path / "data" / "ratings.dat"])}) != keys[0]
