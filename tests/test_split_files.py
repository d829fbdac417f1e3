"""`launch/evaluate.py --split=FILE` for every CTR dataset: a split file in the dataset's own format is read against
the dataset (its ids, its history rule, its train split for `warm`). Written back from the dataset's own splits, a
file must give those splits again, row for row; ids the dataset never had stay beyond its own."""

import gzip
import json

import numpy as np
import pytest

from jaxrec import data as jdata
from jaxrec.data import bookcrossing
from jaxrec.errors import JaxrecError
from jaxrec.train import cf_task, llm_task

from test_data_raw import _cfg, _ml100k_files, _private_cache  # noqa: F401  (the fixture: a private cache)
from test_llm_task import _amazon_root

FIELDS = ("user", "item", "label", "history", "history_len", "history_label", "warm")


def _same_rows(got, want, order=None):
  order = np.arange(len(want)) if order is None else order
  for f in FIELDS:
    np.testing.assert_array_equal(getattr(got, f), getattr(want, f)[order], err_msg=f)


@pytest.fixture()
def ml100k(tmp_path):
  (tmp_path / "ml-100k").mkdir()
  for name, blob in _ml100k_files(np.random.default_rng(3)).items():
    if name.startswith("u."):
      (tmp_path / "ml-100k" / name).write_bytes(blob)
  cfg = _cfg("ml100k", tmp_path)
  return cfg, jdata.load_dataset(cfg)


def test_ml100k_grouplens_and_recbole_lines_give_the_dataset_split(ml100k, tmp_path):
  cfg, ds = ml100k
  valid = ds["valid"]
  order = np.random.default_rng(0).permutation(len(valid))  # a file's own row order is kept
  rating = np.where(valid.label > 0.5, 5, 2)
  lines = [f"{valid.user[r]}\t{valid.item[r]}\t{rating[r]}\t{valid.timestamp[r]}" for r in order]
  (tmp_path / "u9.test").write_text("\n".join(lines) + "\n")
  (tmp_path / "v.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" +
                                    "\n".join(lines) + "\n")
  for name in ("u9.test", "v.inter"):
    _same_rows(jdata.load_split_file(cfg, tmp_path / name, ds), valid, order)
  # a movie the dataset never had keeps its id; a CF run gives it the neutral logit and counts it
  (tmp_path / "new.data").write_text(lines[0] + f"\n{valid.user[0]}\t999\t5\t{valid.timestamp[0]}\n")
  new = jdata.load_split_file(cfg, tmp_path / "new.data", ds)
  assert new.item.tolist()[1] == 999 and not new.warm[1] and new.item_text_extra == {}
  with pytest.raises(JaxrecError, match=r"row 1 names item 999 \(item\), which ml100k does not have"):
    llm_task.split_from_file(ml100k_llm_config(cfg), tmp_path / "new.data", ds)
  (tmp_path / "bad.data").write_text("1\t2\t7\t880000000\n")
  with pytest.raises(JaxrecError, match=r"bad.data: row 1 .* rating in 1..5"):
    jdata.load_split_file(cfg, tmp_path / "bad.data", ds)
  with pytest.raises(JaxrecError, match=r"expected GroupLens' tab-separated .* ending in"):
    jdata.load_split_file(cfg, tmp_path / "valid.parquet", ds)


def ml100k_llm_config(data_cfg):
  import ml_collections
  return ml_collections.ConfigDict({"data": data_cfg})


def test_bookcrossing_tallrec_records_give_the_pool_and_name_new_books(shared_data, tmp_path):
  cfg = _cfg("bookcrossing", shared_data)
  ds = jdata.load_dataset(cfg)
  path = shared_data / "bookcrossing-tallrec" / "valid.json"
  _same_rows(jdata.load_split_file(cfg, path, ds), ds["pool"])  # the pool is valid.json in file order
  records = json.loads(path.read_text())[:3]
  target = '"A Book Nobody Rated" written by Some One'
  records[2]["input"] = records[2]["input"].rsplit("target book ", 1)[0] + f'target book "{target}"?'
  (tmp_path / "test.json").write_text(json.dumps(records))
  split = llm_task.split_from_file(ml100k_llm_config(cfg), tmp_path / "test.json", ds)
  assert split.item[2] == ds.n_items + 1 and split.item_text_extra == {ds.n_items + 1: target}
  assert not split.warm[2]
  np.testing.assert_array_equal(split.item[:2], ds["pool"].item[:2])
  # a prompt names the new book: the run's dataset is extended by the file's texts
  extended = jdata.schema.with_split_texts(ds, split)
  assert extended.item_text[ds.n_items + 1] == target and len(ds.item_text) == ds.n_items + 1
  assert bookcrossing.book_text("A Book Nobody Rated", "Some One") == target


def test_amazon_review_lines_give_the_dataset_split(tmp_path):
  root = tmp_path / "amz"
  _amazon_root(root)
  cfg = _cfg("amazon_book", root, use_cache=False)
  ds = jdata.load_dataset(cfg)
  valid = ds["valid"]
  users, items = ds.info["user_keys"], ds.info["item_keys"]
  lines = [json.dumps({"reviewerID": users[valid.user[r] - 1], "asin": items[valid.item[r] - 1],
                       "overall": 5.0 if valid.label[r] > 0.5 else 3.0, "unixReviewTime": int(valid.timestamp[r])})
           for r in range(len(valid))]
  with gzip.open(tmp_path / "valid.json.gz", "wt") as f:
    f.write("\n".join(lines) + "\n")
  _same_rows(jdata.load_split_file(cfg, tmp_path / "valid.json.gz", ds), valid)
  (tmp_path / "new.jsonl").write_text(lines[0] + "\n" + json.dumps(
      {"reviewerID": "NEW", "asin": "NEWBOOK", "overall": 5.0, "unixReviewTime": int(valid.timestamp[0])}) + "\n")
  new = jdata.load_split_file(cfg, tmp_path / "new.jsonl", ds)
  assert (new.user[1], new.item[1]) == (ds.n_users + 1, ds.n_items + 1) and not new.warm[1]
  (tmp_path / "bad.jsonl").write_text('{"reviewerID": "U0", "asin": "A0"}\n')
  with pytest.raises(JaxrecError, match=r"bad.jsonl:1: missing field\(s\) overall, unixReviewTime"):
    jdata.load_split_file(cfg, tmp_path / "bad.jsonl", ds)


def test_cf_run_scores_a_file_with_new_ids(ml100k, tmp_path):
  """A CF model has no vector for a movie it never saw: such rows get logit 0 and are counted."""
  cfg, ds = ml100k
  from jaxrec.config_util import sibling_config
  from conftest import REPO

  config = sibling_config(str(REPO / "configs" / "x.py"), "baselines/mf.py", "ml100k,tiny")
  config.data = cfg
  dataset, model, params = cf_task.build_model(config, ds)
  valid = ds["valid"]
  (tmp_path / "new.data").write_text(f"{valid.user[0]}\t{valid.item[0]}\t5\t{valid.timestamp[0]}\n"
                                     f"{valid.user[0]}\t999\t5\t{valid.timestamp[0]}\n")
  split = cf_task.split_from_file(config, tmp_path / "new.data", ds)
  scores, unknown = cf_task.ctr_scores(config, dataset, model, params, split)
  assert unknown.tolist() == [False, True] and scores[1] == 0.0 and scores[0] != 0.0
