"""The index of a real `:tiny` CF run (CoLLM's ML-1M split): persistence and its refusals, the evaluator's numbers,
and launch/build_index.py + launch/recommend.py."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO
from jaxrec import evaluate as ev
from jaxrec.errors import JaxrecError
from jaxrec.index import evaluation, pipeline, store
from jaxrec.index.config import index_config
from jaxrec.index.run import load_run
from jaxrec.train import cf_task, loop, task, workdir as run_dir

pytestmark = pytest.mark.slow  # real weights or end-to-end runs: `pytest -m 'not slow'` leaves them out


@pytest.fixture(scope="module")
def workdir(shared_data, tmp_path_factory):
  spec = importlib.util.spec_from_file_location("mf_cfg", REPO / "configs" / "baselines" / "mf.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("ml1m,tiny")
  config.data.root = str(shared_data)
  path = tmp_path_factory.mktemp("index") / "mf"
  task.train(config, path, progress=False)
  return path


def _run(script, *args, check=True):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  proc = subprocess.run([sys.executable, str(REPO / "launch" / script), *map(str, args)], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)
  if check and proc.returncode != 0:
    raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
  return proc


def test_exact_index_reproduces_the_evaluator(workdir):
  """CF alone through the exact index = jaxrec.evaluate.evaluate_topk on the model's own full-catalogue scores."""
  pipeline.build_for_run(workdir, index_config("flat"))
  run = load_run(workdir)
  index, cfg = pipeline.open_index(run, {"retrieve.n": 20, "retrieve.exclude": "positives"})
  split = run.dataset.splits["valid"]
  ours = evaluation.evaluate_pipeline(run, index, split, cfg, ks=(10, 20))["cf"]
  config = run_dir.read_config(workdir)
  _, model, init = cf_task.build_model(config)
  params = loop.restore_params(config, workdir, init)
  score_all = jax.jit(model.score_all)
  theirs = ev.evaluate_topk(lambda b: score_all(params, b), split, run.seen_items("positives"), run.n_items,
                            (10, 20))
  assert ours == pytest.approx(theirs)


def _expect(message, fn):
  with pytest.raises(JaxrecError) as e:
    fn()
  assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
  assert "launch/build_index.py --workdir=" in str(e.value)


def test_mismatched_or_stale_index_is_refused(workdir, tmp_path):
  pipeline.build_for_run(workdir, index_config("ivf", ivf=dict(nlist=8, nprobe=2)))
  run = load_run(workdir)
  store.load(workdir, run.item_table, run.n_items)  # its own index loads
  with pytest.raises(JaxrecError, match=r"index\.ivf\.nlist: fixed when the index was built"):
    store.load(workdir, run.item_table, run.n_items, {"ivf.nlist": 4})

  other = tmp_path / "other"  # another run on the same data: a different config.json (seed)
  shutil.copytree(workdir, other)
  config = json.loads((other / "config.json").read_text())
  config["seed"] = 1
  (other / "config.json").write_text(json.dumps(config))
  _expect("built for another run", lambda: store.load(other, run.item_table, run.n_items))

  small = tmp_path / "small"  # a run with another catalogue (40 items): its index copied into our run
  (small / "embeddings").mkdir(parents=True)
  shutil.copy(workdir / "config.json", small / "config.json")
  np.save(small / "embeddings" / "item.npy", np.random.default_rng(0).normal(size=(41, run.dim)).astype(np.float32))
  pipeline.build_for_run(small, index_config("flat"))
  foreign = tmp_path / "foreign"
  shutil.copytree(workdir, foreign)
  shutil.rmtree(foreign / "index")
  shutil.copytree(small / "index", foreign / "index")
  _expect(f"built for 40 items, but this run's catalogue has {run.n_items}",
          lambda: store.load(foreign, run.item_table, run.n_items))

  stale = tmp_path / "stale"  # the run was retrained after indexing
  shutil.copytree(workdir, stale)
  np.save(stale / "embeddings" / "item.npy", run.item_table * 1.01)
  _expect("stale: built from embeddings/item.npy", lambda: store.load(stale, run.item_table, run.n_items))

  corrupt = tmp_path / "corrupt"
  shutil.copytree(workdir, corrupt)
  blob = bytearray((corrupt / "index" / "index.faiss").read_bytes())
  blob[-1] ^= 0xFF
  (corrupt / "index" / "index.faiss").write_bytes(bytes(blob))
  _expect("checksum differs from the manifest", lambda: store.load(corrupt, run.item_table, run.n_items))

  shutil.rmtree(corrupt / "index")
  _expect("no index", lambda: store.load(corrupt, run.item_table, run.n_items))


def _titles(stdout):
  return [line for line in stdout.splitlines() if re.match(r"^\s*\d+\. ", line)]


def test_build_index_and_recommend_print_k_titles(workdir):
  out = _run("build_index.py", f"--workdir={workdir}", "--config=configs/index.py:hnsw", "--config.hnsw.m=8").stdout
  assert "built hnsw index of 3255 items" in out, out
  run = load_run(workdir)
  user = int(run.dataset.splits["train"].user[0])
  out = _run("recommend.py", f"--workdir={workdir}", f"--user={user}", "--k=7").stdout
  lines = _titles(out)
  assert len(lines) == 7, out
  seen = {run.dataset.item_text[i] for i in run.seen_items("all")[user]}
  assert not any(line.split(". ", 1)[1].rsplit("  ", 1)[0] in seen for line in lines)
  out = _run("recommend.py", f"--workdir={workdir}", "--history=Toy Story (1995); Heat (1995)").stdout
  lines = _titles(out)
  assert len(lines) == 10 and not any("Toy Story (1995)" in line or "Heat (1995)" in line for line in lines), out
  bad = _run("recommend.py", f"--workdir={workdir}", check=False)
  assert bad.returncode == 2 and bad.stderr.strip() == ("error: pass exactly one of --user=ID and --history='title; "
                                                        "title; ...' (or --evaluate=SPLIT)"), bad.stderr
  unknown = _run("recommend.py", f"--workdir={workdir}", "--user=999999", check=False)  # part of the bad-input corpus
  lines = unknown.stderr.strip().splitlines()
  assert unknown.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "999999" in lines[0], \
      unknown.stderr
  message = r"--history: no item titled 'Toy Stori \(1995\)' in ml1m_collm; did you mean 'Toy Story"
  with pytest.raises(JaxrecError, match=message):
    run.items_from_titles("Toy Stori (1995)")
