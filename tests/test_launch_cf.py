"""launch/train.py and launch/evaluate.py on the CF baselines: tiny runs on the real CoLLM ML-1M split."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from jaxrec.errors import JaxrecError
from jaxrec.train import task
from jaxrec.config_util import parse_arg
from jaxrec.train import cf_config


def _run(script, *args, check=True):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  proc = subprocess.run([sys.executable, str(REPO / "launch" / script), *map(str, args)], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)
  if check and proc.returncode != 0:
    raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
  return proc


@pytest.mark.slow
def test_mf_tiny_train_resume_and_evaluate(shared_data, tmp_path):
  workdir = tmp_path / "mf"
  args = ["--config=configs/baselines/mf.py:ml1m,tiny", f"--workdir={workdir}", f"--config.data.root={shared_data}",
          "--noprogress"]
  first = _run("train.py", *args)
  assert "valid_small" in first.stdout and "uauc" in first.stdout  # the printed table
  for name in ("config.json", "metrics.jsonl", "metrics.json", "checkpoints/cf/done.json", "embeddings/item.npy",
               "embeddings/user.npy"):
    assert (workdir / name).exists(), name
  trained = json.loads((workdir / "metrics.json").read_text())["splits"]
  assert set(trained) == {"valid", "valid_small"} and 0 <= trained["valid"]["auc"] <= 1

  again = _run("train.py", *args)  # a finished workdir: nothing retrained, same numbers
  assert json.loads((workdir / "metrics.json").read_text())["splits"] == trained, again.stdout

  _run("evaluate.py", f"--workdir={workdir}", "--split=valid_small")
  evaluated = json.loads((workdir / "eval/valid_small.json").read_text())["splits"]["valid_small"]
  assert evaluated.pop("unknown_items") == 0 and evaluated == trained["valid_small"]
  path = shared_data / "ml1m-collm" / "valid_small.parquet"
  out = _run("evaluate.py", f"--workdir={workdir}", f"--split={path}", f"--output={tmp_path / 'vs.json'}")
  from_file = json.loads((tmp_path / "vs.json").read_text())["splits"]["valid_small"]
  assert from_file["n"] == 5200 and "auc" in out.stdout  # the whole file, not the tiny budget


@pytest.mark.parametrize("override, message", [
    ("--config.model.bogus=1", "error: --config.model.bogus: no such config field"),
    ("--config.stages[0].optimizer.lr=-0.1",
     "error: config.stages[0].optimizer.lr: expected a finite learning rate in (0, 10]"),
    ("--config.model.name=gru4rec", "error: config.model.name: expected one of"),
    ("--config.stages[0].num_epochs=abc", "error: "),
])
def test_bad_config_fails_in_one_line(override, message, shared_data, tmp_path):
  proc = _run("train.py", "--config=configs/baselines/mf.py:tiny", f"--workdir={tmp_path / 'w'}",
              f"--config.data.root={shared_data}", override, check=False)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(message), proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lightgcn", "sasrec", "din"])
def test_other_baselines_tiny(name, shared_data, tmp_path):
  spec = __import__("importlib").util.spec_from_file_location(name, REPO / "configs" / "baselines" / f"{name}.py")
  module = __import__("importlib").util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("tiny")
  config.data.root = str(shared_data)
  results = task.train(config, tmp_path / name, progress=False)
  assert 0 <= results["valid"]["auc"] <= 1 and results["valid"]["n"] == 256
  assert (tmp_path / name / "embeddings" / "item.npy").exists()


def test_config_arg_parsing():
  """One parser for every config's arg: bare bool keys, bare choice values, typed key=value, one-line refusals."""
  assert cf_config.parse(None).to_dict() == {"dataset": "ml1m", "tiny": False, "topk": False}
  assert cf_config.parse("tiny").to_dict() == {"dataset": "ml1m", "tiny": True, "topk": False}
  assert cf_config.parse("bookcrossing,tiny,topk").to_dict() == {"dataset": "bookcrossing", "tiny": True, "topk": True}
  assert cf_config.parse("ml1m_collm").dataset == "ml1m"  # a jaxrec.data name stands for its token
  with pytest.raises(JaxrecError, match="unknown token 'ml20m'"):
    cf_config.parse("ml20m")
  with pytest.raises(JaxrecError, match="more than one dataset"):
    cf_config.parse("ml1m,ml100k")
  arg = parse_arg("tiny=false,steps=12,lr=3e-4,name=x", tiny=True, steps=1, lr=1.0, name="")
  assert arg.to_dict() == {"tiny": False, "steps": 12, "lr": 3e-4, "name": "x"}
  with pytest.raises(JaxrecError, match=r"steps='a'; expected int"):
    parse_arg("steps=a", steps=1)
  with pytest.raises(JaxrecError, match="unknown key 'rank'"):
    parse_arg("rank=4", tiny=False)


@pytest.mark.parametrize("config_file, overrides, expected", [
    ("configs/ml1m.py", ["--config.eval.final_splits=('valid',)"], {"final_splits": ("valid",)}),
    ("configs/baselines/mf.py:ml1m_topk,topk", ["--config.eval.final_splits=('valid',)", "--config.eval.ks=(5, 50)"],
     {"final_splits": ("valid",), "ks": (5, 50)}),
    ("configs/ml1m_multiscale.py:long", ["--config.eval.ks=(10,)"], {"ks": (10,)}),
])
def test_eval_lists_are_settable_on_the_command_line(config_file, overrides, expected):
  """config.eval.final_splits and ks are tuples: ml_collections' flags cannot override list fields at all."""
  from absl import flags
  from ml_collections import config_flags

  argv = ["train.py", f"--config={REPO / config_file}", *overrides]
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, flag_values=fv, sys_argv=argv)  # as the launch scripts do
  fv(argv)
  for key, value in expected.items():
    assert tuple(fv.config.eval[key]) == value
