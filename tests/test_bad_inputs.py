"""The standing corpus of bad inputs: each case runs `launch/train.py` in-process (its `main` parses flags of its
own) and must end in exit status 2 with exactly one line `error: ...` naming the culprit, leaving nothing in the
workdir (it is not created, or stays as it was but for its lock file) and nothing new in the caches."""

import gzip
import importlib.util
import json
import os
import pathlib
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO
from jaxrec import paths
from jaxrec.llm import assets
from jaxrec.train import workdir as run_dir
from launch import _cli, train as launch_train
from llm_fixtures import tiny_hf

MF = f"--config={REPO}/configs/baselines/mf.py:tiny"
COLLM = f"--config={REPO}/configs/ml1m.py:tiny"


def _tree(path: pathlib.Path) -> dict[str, int]:
  """Every file under `path` with its size ({} when absent), but the lock file of an existing workdir (it marks no
  result: the OS drops the lock with the process)."""
  if not path.exists():
    return {}
  return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*"))
          if p.is_file() and p.name != run_dir.LOCK_NAME}


@pytest.fixture
def refuse(capsys, tmp_path):
  """refuse(*argv, expect=..., workdir=...) runs train.py and checks the refusal contract; returns the line."""
  gguf = assets.default_gguf()  # fetched (and stamped) before the caches are snapshotted

  def run(*argv, expect: str, workdir: pathlib.Path | None = None):
    workdir = workdir or tmp_path / "run"
    before, cache_before = _tree(workdir), _tree(paths.cache_dir())
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
      _cli.run(launch_train.main, ["train.py", *argv, f"--workdir={workdir}", "--noprogress"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert e.value.code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expect in lines[0], lines[0]
    assert _tree(workdir) == before, f"workdir changed: {_tree(workdir)}"
    assert _tree(paths.cache_dir()) == cache_before
    print(f"REFUSED {' '.join(argv)} -> {lines[0]}")  # `pytest -s` lists the corpus with its lines
    return lines[0]

  run.gguf = gguf
  return run


@pytest.fixture
def collm_root(shared_data, tmp_path):
  """A data root holding a writable copy of CoLLM's ML-1M parquet split."""
  root = tmp_path / "data"
  shutil.copytree(shared_data / "ml1m-collm", root / "ml1m-collm")
  return root


def _rewrite(path: pathlib.Path, column: str, values) -> None:
  table = pq.read_table(path)
  i = table.column_names.index(column)
  pq.write_table(table.set_column(i, column, pa.array(values)), path)


# --- config values --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("override, expect", [
    ("--config.stages[0].optimizer.lr=inf", "config.stages[0].optimizer.lr: expected a finite learning rate"),
    ("--config.stages[0].optimizer.lr=1e30", "config.stages[0].optimizer.lr: expected a finite learning rate"),
    ("--config.stages[0].optimizer.weight_decay=nan", "config.stages[0].optimizer.weight_decay: expected a finite"),
    ("--config.stages[0].optimizer.weight_decay=1e9", "config.stages[0].optimizer.weight_decay: expected a finite"),
    ("--config.model.bogus=1", "--config.model.bogus: no such config field"),
    ("--config.stages[0].num_epochs=abc", "num_epochs"),
    ("--config.model.name=gru4rec", "config.model.name: expected one of"),
])
def test_bad_config_values(refuse, shared_data, override, expect):
  refuse(MF, f"--config.data.root={shared_data}", override, expect=expect)


@pytest.mark.parametrize("override, expect", [
    ("--config.eval_dtype=float16", "config.eval_dtype: expected '' (the model's dtype) or one of"),
    ("--config.model.attention=flash", "config.model.attention: expected 'einsum', 'causal_blocks' or 'dpa'"),
    ("--config.model.scan_layers=3", "scan_layers"),
])
def test_bad_llm_config_values(refuse, shared_data, override, expect):
  refuse(COLLM, f"--config.data.root={shared_data}", override, expect=expect)


def test_unknown_config_arg_token(refuse, shared_data):
  refuse(f"--config={REPO}/configs/baselines/mf.py:tinyy", f"--config.data.root={shared_data}",
         expect="unknown token")


# --- workdir --------------------------------------------------------------------------------------------------

def test_workdir_under_a_regular_file(refuse, shared_data, tmp_path):
  (tmp_path / "plain").write_text("x")
  refuse(MF, f"--config.data.root={shared_data}", workdir=tmp_path / "plain" / "run",
         expect=f"--workdir={tmp_path / 'plain' / 'run'}: cannot be created")


def test_workdir_in_use(refuse, shared_data, tmp_path):
  with run_dir.claim(tmp_path / "busy"):
    line = refuse(MF, f"--config.data.root={shared_data}", workdir=tmp_path / "busy", expect="in use by another run")
  assert f"pid {os.getpid()}" in line


def test_workdir_with_another_config_is_refused_before_the_cf_model_trains(refuse, shared_data, tmp_path):
  workdir = tmp_path / "other"
  workdir.mkdir()
  spec = importlib.util.spec_from_file_location("cfg", REPO / "configs" / "ml1m.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  other = module.get_config("tiny")
  other.data.root = str(shared_data)
  other.cf_train.data.root, other.model.cf.workdir = str(shared_data), str(workdir / "cf")  # as a run saves it
  other.stages[0].optimizer.lr = 0.5  # the same experiment with another lr
  (workdir / "config.json").write_text(other.to_json_best_effort(indent=2, sort_keys=True))
  refuse(COLLM, f"--config.data.root={shared_data}", workdir=workdir,
         expect="holds a run with a different config (config.stages[0].optimizer.lr: 0.5 there, 0.001 now)")
  assert not (workdir / "cf").exists()


# --- data files -----------------------------------------------------------------------------------------------

def test_missing_data_root(refuse, tmp_path):
  refuse(MF, f"--config.data.root={tmp_path / 'nowhere'}", "--config.data.fetch=False", expect="missing file(s)")


@pytest.mark.parametrize("column, values, expect", [
    ("timestamp", lambda n: [None] + [1] * (n - 1), "column 'timestamp' row 0 is null"),
    ("uid", lambda n: [str(i) for i in range(n)], "column 'uid' has type string; expected int"),
    ("label", lambda n: ["1"] * n, "column 'label' has type string"),
    ("his", lambda n: [[0, None]] + [[0]] * (n - 1), "column 'his' row 0 holds a null element"),
])
def test_parquet_types_and_nulls(refuse, collm_root, column, values, expect):
  path = collm_root / "ml1m-collm" / "valid.parquet"
  _rewrite(path, column, values(pq.read_metadata(path).num_rows))
  refuse(MF, f"--config.data.root={collm_root}", expect=f"{path}: {expect}")


def test_parquet_truncated_renamed_extra_empty_and_bad_labels(refuse, collm_root):
  path = collm_root / "ml1m-collm" / "train.parquet"
  good = path.read_bytes()
  path.write_bytes(good[: len(good) // 2])
  refuse(MF, f"--config.data.root={collm_root}", expect=f"{path}: not a readable Parquet file")
  path.write_bytes(good)
  table = pq.read_table(path)
  pq.write_table(table.rename_columns(["user" if c == "uid" else c for c in table.column_names]), path)
  refuse(MF, f"--config.data.root={collm_root}", expect="missing: ['uid']")
  pq.write_table(table.append_column("extra", pa.array([0] * table.num_rows)), path)
  refuse(MF, f"--config.data.root={collm_root}", expect="unknown: ['extra']")
  pq.write_table(table.slice(0, 0), path)
  refuse(MF, f"--config.data.root={collm_root}", expect="no rows")
  pq.write_table(table.set_column(table.column_names.index("label"), "label",
                                  pa.array([2] * table.num_rows, pa.int8())), path)
  refuse(MF, f"--config.data.root={collm_root}", expect="row 0 has label 2")


def test_truncated_json(refuse, shared_data, tmp_path):
  root = tmp_path / "data"
  (root / "bookcrossing-tallrec").mkdir(parents=True)
  text = (shared_data / "bookcrossing-tallrec" / "valid.json").read_text()
  (root / "bookcrossing-tallrec" / "valid.json").write_text(text[: len(text) // 2])
  refuse(f"--config={REPO}/configs/tallrec_bookcrossing.py:tiny", f"--config.data.root={root}",
         expect=str(root / "bookcrossing-tallrec" / "valid.json"))


@pytest.mark.parametrize("field, value", [("input", None), ("output", ["Yes."])])
def test_json_record_types(refuse, shared_data, tmp_path, field, value):
  root = tmp_path / "data"
  (root / "bookcrossing-tallrec").mkdir(parents=True)
  records = json.loads((shared_data / "bookcrossing-tallrec" / "valid.json").read_text())
  records[5][field] = value
  path = root / "bookcrossing-tallrec" / "valid.json"
  path.write_text(json.dumps(records))
  refuse(f"--config={REPO}/configs/tallrec_bookcrossing.py:tiny", f"--config.data.root={root}",
         expect=f"{path} record 5: field {field!r} is {type(value).__name__}; expected a string")


def test_amazon_null_ids(refuse, tmp_path):
  from test_llm_task import _amazon_root

  root = _amazon_root(tmp_path / "data")
  path = root / "amazon-book" / "Books_5.json.gz"
  lines = gzip.open(path, "rt").read().splitlines()
  lines[2] = json.dumps(dict(json.loads(lines[2]), reviewerID=None))
  with gzip.open(path, "wt") as f:
    f.write("\n".join(lines) + "\n")
  refuse(f"--config={REPO}/configs/amazon_book.py:tiny", f"--config.data.root={root}",
         "--config.data.use_cache=False", expect=f"{path}:3: field 'reviewerID' is None; expected a non-empty string")


# --- model files: found before the CF model trains ------------------------------------------------------------

def test_corrupted_cached_model(refuse, shared_data, tmp_path, monkeypatch):
  copy = tmp_path / "smollm2.gguf"
  shutil.copyfile(refuse.gguf, copy)
  monkeypatch.setenv("JAXREC_SMOLLM2_GGUF", str(copy))
  assets.default_gguf()  # intact: hashed once and stamped
  with open(copy, "r+b") as f:  # 8 MB in the middle overwritten, same size
    f.seek(copy.stat().st_size // 2)
    f.write(b"\0" * (8 << 20))
  refuse(COLLM, f"--config.data.root={shared_data}", expect=f"{copy}: SHA-256")


@pytest.mark.parametrize("kind", ["truncated", "random", "no_weights", "hub_offline"])
def test_bad_llm_files(refuse, shared_data, tmp_path, monkeypatch, kind):
  if kind == "truncated":
    spec = tmp_path / "t.gguf"
    spec.write_bytes(refuse.gguf.read_bytes()[: 50_000_000])
    expect = f"{spec}: not a readable GGUF file"
  elif kind == "random":
    spec = tmp_path / "r.gguf"
    spec.write_bytes(os.urandom(1 << 20))
    expect = f"{spec}: not a readable GGUF file"
  elif kind == "no_weights":
    spec = tmp_path / "hf"
    tiny_hf("llama", spec)
    for f in spec.glob("*.safetensors"):
      f.unlink()
    expect = f"{spec}: no model.safetensors"
  else:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = "SomeOrg/SomeModel"
    expect = "SomeOrg/SomeModel: not a local checkpoint directory and the Hugging Face hub is unreachable"
  refuse(COLLM, f"--config.data.root={shared_data}", f"--config.model.llm={spec}", expect=expect)


def test_metrics_json_is_valid_after_a_refusal_free_run_of_nan_metrics(tmp_path):
  """metrics.json holds null, never NaN (a single-class split has no AUC)."""
  from jaxrec import evaluate as ev

  ev.write_metrics(tmp_path / "m.json", {"splits": {"valid": {"auc": float("nan"), "n": 3}}})
  assert json.loads((tmp_path / "m.json").read_text(), parse_constant=lambda c: pytest.fail(c)) == \
      {"splits": {"valid": {"auc": None, "n": 3}}}
