"""The data layer on the real files in ../shared/data: exact split sizes and protocol rules."""

import json

import numpy as np
import pytest

from jaxrec import data as jdata
from jaxrec.data import prompts


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXREC_CACHE", str(tmp_path / "cache"))


def _cfg(name, shared_data, **kw):
  cfg = jdata.get_data_config(name)
  cfg.root = str(shared_data)
  for k, v in kw.items():
    cfg[k] = v
  return cfg


@pytest.fixture(scope="module")
def ml1m(shared_data):
  return jdata.load_dataset(_cfg("ml1m_collm", shared_data))


def test_ml1m_collm_sizes(ml1m):
  tr, va, vs = ml1m["train"], ml1m["valid"], ml1m["valid_small"]
  assert (len(tr), len(va), len(vs)) == (33891, 10401, 5200)
  assert np.unique(tr.user).size == 740 and np.unique(tr.item).size == 3087
  assert np.unique(va.user).size == 356
  assert abs(tr.label.mean() - 0.537) < 1e-3 and abs(va.label.mean() - 0.528) < 1e-3
  assert set(np.unique(tr.label)) == {0.0, 1.0}
  assert tr.warm.all() and abs(va.warm.mean() - 0.6354) < 1e-3  # CoLLM's not_cold share
  assert ml1m.item_text[0] == "" and len(ml1m.item_text) == ml1m.n_items + 1


def test_ml1m_collm_valid_small_is_pandas_sample_of_valid(ml1m):
  va, vs = ml1m["valid"], ml1m["valid_small"]
  pick = np.random.RandomState(2023).choice(len(va), 5200, replace=False)
  np.testing.assert_array_equal(va.item[pick], vs.item)
  np.testing.assert_array_equal(va.timestamp[pick], vs.timestamp)


def test_ml1m_collm_history_rules(ml1m):
  tr = ml1m["train"]
  h = tr.history  # [N, 50]
  assert h.shape == (len(tr), 50)
  # Left padding: zeros only before the first real id, and history_len counts the rest.
  nz = h > 0
  assert (nz.sum(1) == tr.history_len).all()
  assert (np.cumsum(nz, 1)[:, -1] == tr.history_len).all() and (np.diff(nz.astype(int), axis=1) >= 0).all()
  # History = earlier positives of the same user (never later; CoLLM keeps same-second ones).
  first = {}
  for u, i, t in zip(tr.user, tr.item, tr.timestamp):
    first[(u, i)] = min(t, first.get((u, i), t))
  liked = {(u, i) for u, i, l in zip(tr.user, tr.item, tr.label) if l == 1}
  for r in range(0, len(tr), 97):
    for i in tr.history_ids(r):
      assert (tr.user[r], i) in liked and first[(tr.user[r], i)] <= tr.timestamp[r]
  assert ml1m.item_genres[ml1m.item_text.index("Toy Story (1995)")] == "Animation, Children's, Comedy"


def test_ml1m_collm_prompt_text(ml1m):
  tr = ml1m["train"]
  r = int(np.flatnonzero(tr.history_len == 1)[0])
  text = prompts.render(prompts.TEMPLATES["collm_movie"], tr, ml1m.item_text, [r])[0]
  assert text == (
      "#Question: A user has given high ratings to the following movies: \"Shawshank Redemption, The (1994)\". "
      "Additionally, we have information about the user's preferences encoded in the feature <UserID>. Using all "
      "available information, make a prediction about whether the user would enjoy the movie titled \"Sting, The "
      "(1973)\" with the feature <TargetItemID>? Answer with \"Yes\" or \"No\". \\n#Answer:")
  empty = prompts.render(prompts.TEMPLATES["tallrec_movie"], tr, ml1m.item_text, [0])[0]
  assert "following movies: unkow." in empty  # CoLLM's fallback for an empty history


def test_bookcrossing_pool_and_few_shot(shared_data):
  ds = jdata.load_dataset(_cfg("bookcrossing", shared_data))
  pool = ds["pool"]
  assert len(pool) == 2427 and int(pool.label.sum()) == 1011
  assert (pool.user == 0).all() and (pool.timestamp == -1).all() and pool.history_len.max() <= 10
  records = json.loads((shared_data / "bookcrossing-tallrec" / "valid.json").read_text())
  texts = prompts.render(prompts.TALLREC_BOOK_INPUT, pool, ds.item_text, range(len(pool)), quote_titles=False,
                         empty_history_text="")
  assert texts == [r["input"] for r in records]  # every record rebuilt exactly from ids
  full = prompts.render(prompts.TEMPLATES["tallrec_book"], pool, ds.item_text, [0], quote_titles=False,
                        empty_history_text="")[0]
  assert full.startswith("Below is an instruction") and records[0]["instruction"] in full
  assert full.endswith(records[0]["input"] + "\n\n### Response:\n")
  tr, va = ds["train"], ds["valid"]
  assert (len(tr), len(va)) == (64, 500)
  key = lambda sp: {(int(i), tuple(sp.history[r])) for r, i in enumerate(sp.item)}  # noqa: E731
  assert not key(tr) & key(va)
  again = jdata.load_dataset(_cfg("bookcrossing", shared_data))
  np.testing.assert_array_equal(again["train"].item, tr.item)
  other = jdata.load_dataset(_cfg("bookcrossing", shared_data, seed=1, train_shots=16))
  assert len(other["train"]) == 16 and not np.array_equal(other["valid"].item, va.item)
  same_valid = jdata.load_dataset(_cfg("bookcrossing", shared_data, train_shots=256))
  np.testing.assert_array_equal(same_valid["valid"].item, va.item)  # valid does not depend on the shot count
  assert len(jdata.load_dataset(_cfg("bookcrossing", shared_data, train_shots=-1))["train"]) == 2427 - 500


def test_ml1m_topk_from_implicit_parquet(shared_data):
  ds = jdata.load_dataset(_cfg("ml1m_topk", shared_data, use_cache=False))
  sizes = {k: len(v) for k, v in ds.splits.items()}
  assert sum(sizes.values()) == 1000209 and ds.n_users == 6040 and ds.n_items == 3706
  tr, te = ds["train"], ds["test"]
  counts = np.bincount(tr.user, minlength=ds.n_users + 1)[1:]
  totals = counts + np.bincount(ds["valid"].user, minlength=ds.n_users + 1)[1:] + \
      np.bincount(te.user, minlength=ds.n_users + 1)[1:]
  np.testing.assert_array_equal(counts, (totals * 0.8).astype(int))
  u = int(te.user[0])
  assert set(te.history_ids(0)) <= set(ds.train_items_by_user[u].tolist())
  assert not set(te.item[te.user == u]) & set(ds.train_items_by_user[u].tolist())
  assert ds.item_text[1] == "Toy Story (1995)" and (tr.timestamp == -1).all()
