"""End-to-end `:tiny` runs of every LLM-recommender config (random 2-layer LLM, a few dozen rows): the CF model, both
stages, the final evaluation and the exports, then a run killed in its last stage and resumed to the same numbers.

The programs compiled by one run are reused from the session's persistent XLA cache (tests/conftest.py) by the
killed and resumed runs and by configs of the same shapes, which keeps these tests to seconds per config.
"""

import datetime
import gzip
import importlib.util
import json
import math
import pathlib

import jax
import numpy as np
import pytest

from jaxrec import evaluate as ev, metrics as M
from jaxrec.data import load_dataset, sample_rows
from jaxrec.errors import JaxrecError
from jaxrec.models import prefix as prefix_lib, scoring
from jaxrec.train import cf_task, llm_task, loop, results, task, workdir as run_dir

pytestmark = pytest.mark.slow  # real weights or end-to-end runs: `pytest -m 'not slow'` leaves them out

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ("ml1m", "ml1m_collm_order", "ml100k", "bookcrossing", "amazon_book", "tallrec_ml1m", "tallrec_ml100k",
           "tallrec_bookcrossing")


def _config(name, arg="tiny"):
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", REPO / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _amazon_root(root: pathlib.Path) -> pathlib.Path:
  """`amazon-book/` in the Amazon Review Data (2018) format: 24 users × 24 books rated in 2017 (every user and book
  above CoLLM's 20-rating cut), a fifth in December (valid / test), 5 stars ≈ 40%."""
  folder = root / "amazon-book"
  folder.mkdir(parents=True)
  rng = np.random.default_rng(0)
  reviews = []
  for u in range(24):
    for a in range(24):
      month = 12 if rng.random() < 0.2 else int(rng.integers(1, 12))
      day = datetime.datetime(2017, month, int(rng.integers(1, 29)), tzinfo=datetime.timezone.utc)
      stars = 5.0 if rng.random() < 0.25 + 0.3 * ((u + a) % 2) else float(rng.integers(1, 5))
      reviews.append(dict(reviewerID=f"U{u:02d}", asin=f"B{a:03d}", overall=stars,
                          unixReviewTime=int(day.timestamp()) + int(rng.integers(0, 86400))))
  with gzip.open(folder / "Books_5.json.gz", "wt") as f:
    f.write("".join(json.dumps(r) + "\n" for r in reviews))
  (folder / "meta_Books.json").write_text(
      "".join(json.dumps(dict(asin=f"B{a:03d}", title=f"Book number {a}")) + "\n" for a in range(24)))
  return root


@pytest.fixture(scope="module")
def tiny_config(shared_data, tmp_path_factory):
  """name → a fresh `:tiny` config reading the real data (Amazon-Book: the fixture files, not cached)."""
  amazon = []

  def make(name, arg="tiny"):
    config = _config(name, arg)
    if config.data.name == "amazon_book":
      if not amazon:
        amazon.append(_amazon_root(tmp_path_factory.mktemp("amazon")))
      config.data.root, config.data.use_cache = str(amazon[0]), False
      config.cf_train.data.use_cache = False
    else:
      config.data.root = str(shared_data)
    return config

  return make


@pytest.fixture(scope="module")
def full_run(tiny_config, tmp_path_factory):
  """name → (workdir, final metrics, initial params, final params) of one uninterrupted run, trained once."""
  runs = {}

  def get(name):
    if name not in runs:
      seen, loop_train, workdir = [], loop.train, tmp_path_factory.mktemp(name)

      def spy(config, workdir, **kw):  # records each loop.train's params: the CF run's, then the LLM run's
        result = loop_train(config, workdir, **kw)
        seen.append((jax.device_get(kw["init_params"]), jax.device_get(result.params)))
        return result

      with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "train", spy)
        finals = task.train(tiny_config(name), workdir, progress=False)
      runs[name] = (workdir, finals, *seen[-1])
    return runs[name]

  return get


class _KillAt:
  """Wraps a stage's training data and raises KeyboardInterrupt (as a kill would) before global step `at`."""

  def __init__(self, data, at):
    self.data, self.at, self.steps_per_epoch = data, at, data.steps_per_epoch

  def batches(self, epoch, start=0):
    for i, b in enumerate(self.data.batches(epoch, start)):
      if epoch * self.steps_per_epoch + start + i == self.at:
        raise KeyboardInterrupt
      yield b


def _records(workdir, event):
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  return [r for r in map(json.loads, lines) if r["event"] == event]


@pytest.mark.parametrize("name", CONFIGS)
def test_tiny_config_trains_every_stage_and_resumes(name, tiny_config, full_run, tmp_path, monkeypatch):
  config = tiny_config(name)
  stages = [s.name for s in config.stages]
  assert stages == (["lora"] if name.startswith("tallrec") else ["lora", "fece"] if name.endswith("collm_order")
                    else ["fece", "lora"])
  workdir, full, init, final = full_run(name)

  # The run: every stage in the config's order, finite AUCs, the exports of its model kind.
  assert [s["name"] for s in json.loads((workdir / "metrics.json").read_text())["stages"]] == stages
  assert [r["stage"] for r in _records(workdir, "train")] == [s for s in stages for _ in range(4)]
  assert set(full) == set(config.eval.final_splits)
  for split, metrics in full.items():
    assert 0.0 <= metrics["auc"] <= 1.0, (split, metrics)
    assert all(0.0 <= v <= 1.0 for k, v in metrics.items() if k.endswith("auc") and not math.isnan(v))
  files = ["config.json", "results.md", "adapter/adapter_model.safetensors", "cf/metrics.json"]
  files += ["embeddings/item_llm.npy"] if config.model.cf.name != "none" else []
  assert all((workdir / f).is_file() for f in files), files
  # every final split is paired with a CF model on its own rows: the one CoLLM builds on; TALLRec's reference
  # (config.eval.reference_cf: its cf_train, trained into <workdir>/cf like CoLLM's)
  text_only = config.model.cf.name == "none"
  for split, metrics in full.items():
    vs = metrics["vs_cf"]
    assert vs["model"] == (config.cf_train.model.name if text_only else config.model.cf.name)
    assert vs["all"]["n"] == metrics["n"] and vs["all"]["auc"]["b"] == pytest.approx(metrics["auc"], abs=1e-12)
  text = (workdir / "results.md").read_text()  # the run beside the papers' numbers for its dataset
  assert ("### Against its CF reference (" if text_only else "### Against its CF model (") in text
  assert all(f"| {method} | {results._f(auc)} |" in text for method, auc, _, _ in results.PAPER[config.data.name])
  pngs = ["training_curves.png"] + [f"warm_cold_{split}.png" for split in full]
  assert all(f"({png})" in text and (workdir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for png in pngs)
  if config.model.cf.name != "none":  # the bars stand beside the CF model's own figures
    assert len(list((workdir / "tb").glob("events.out.tfevents.*"))) >= 1
  assert all((workdir / f"checkpoints/{s}/done.json").is_file() for s in stages)

  # Each stage moved only its own leaves: the backbone (and the CF tables) are bit-identical after both stages.
  trained = {s.trainable[0].split("/")[0] for s in config.stages}
  assert trained == ({"lora"} if config.model.cf.name == "none" else {"lora", "fece"})
  for part in init:
    moved = [np.abs(a - b).max() > 0 for a, b in zip(jax.tree.leaves(init[part]), jax.tree.leaves(final[part]))]
    assert any(moved) if part in trained else not any(moved), part

  # Killed in the middle of the last stage (after its step-2 checkpoint), then resumed with the same command.
  original = llm_task.Runner.stage_inputs

  def killing(self, stage):
    data, evaluate_fn = original(self, stage)
    return (_KillAt(data, at=3) if stage.name == stages[-1] else data), evaluate_fn

  monkeypatch.setattr(llm_task.Runner, "stage_inputs", killing)
  with pytest.raises(KeyboardInterrupt):
    task.train(tiny_config(name), tmp_path, progress=False)
  assert [(tmp_path / f"checkpoints/{s}/done.json").exists() for s in stages] == [True] * (len(stages) - 1) + [False]
  monkeypatch.setattr(llm_task.Runner, "stage_inputs", original)
  resumed = task.train(tiny_config(name), tmp_path, progress=False)
  assert resumed.keys() == full.keys()
  for split in full:
    np.testing.assert_equal(resumed[split], full[split])
  # finished stages were not trained again; the last one replayed the steps after its checkpoint (metrics.jsonl
  # repeats them: the last record per step counts) and went on with the uninterrupted run's losses
  losses = lambda w: {(r["stage"], r["step"]): r["loss"] for r in _records(w, "train")}  # noqa: E731
  logged = [r["stage"] for r in _records(tmp_path, "train")]
  assert [logged.count(s) for s in stages] == [4] * (len(stages) - 1) + [5]  # step 3 of the last stage twice
  assert losses(tmp_path) == losses(workdir)


def test_collm_ml1m_outputs_evaluate_and_scorer(full_run):
  w, full, _, _ = full_run("ml1m")
  for f in ("metrics.jsonl", "adapter/adapter_config.json", "embeddings/item.npy"):
    assert (w / f).is_file(), f
  trains = _records(w, "train")
  assert all(k in trains[0] for k in ("step", "loss", "lr", "examples_per_s"))
  lo, hi = full["valid_small"]["auc_ci"]  # the final evaluation's 95% bootstrap interval, shown beside the value
  assert lo <= full["valid_small"]["auc"] <= hi
  assert f"| valid_small | overall | {full['valid_small']['auc']:.4f} [{lo:.4f}, {hi:.4f}] |" in \
      (w / "results.md").read_text()
  # every row's score is kept for launch/compare.py, and the run met its own CF model on the same rows
  rows = ev.read_arrays(w / "per_row" / "valid_small.npz")
  assert len(rows["score"]) == full["valid_small"]["n"]
  assert M.auc(rows["label"], rows["score"]) == pytest.approx(full["valid_small"]["auc"], abs=1e-12)
  vs = full["valid_small"]["vs_cf"]
  cf_own = ev.read_arrays(w / "cf" / "per_row" / "valid_small.npz")  # the CF run's own final scores
  cf_config, config = run_dir.read_config(w / "cf"), run_dir.read_config(w)
  cf_rows = sample_rows(cf_task.load(cf_config).splits["valid_small"], cf_config.final_eval_rows, cf_config.data.seed)
  np.testing.assert_array_equal(cf_rows.item, cf_own["item"])
  # row_scorer rebuilds the CF run from its workdir: on the CF run's own final rows it gives its own scores ...
  cf_scores = cf_task.row_scorer(w / "cf")
  np.testing.assert_allclose(cf_scores(cf_rows), cf_own["score"], atol=1e-6)
  # ... and on this run's rows it gives the CF side of the comparison
  llm_rows = sample_rows(load_dataset(config.data).splits["valid_small"], config.final_eval_rows, config.data.seed)
  np.testing.assert_array_equal(llm_rows.item, rows["item"])
  assert vs["all"]["auc"]["a"] == pytest.approx(M.auc(rows["label"], cf_scores(llm_rows)), abs=1e-12)
  assert vs["model"] == "mf" and vs["all"]["n"] == len(rows["score"])
  assert vs["all"]["auc"]["b"] == pytest.approx(full["valid_small"]["auc"], abs=1e-12)
  assert vs["all"]["auc"]["diff"] == pytest.approx(vs["all"]["auc"]["b"] - vs["all"]["auc"]["a"], abs=1e-12)
  assert "### Against its CF model (MF), on the same rows" in (w / "results.md").read_text()

  items = np.load(w / "embeddings/item_llm.npy")
  assert items.shape[1] == 32 and np.abs(items[1:]).sum() > 0  # mapped into the (tiny) LLM's width

  # evaluate.py on the same split agrees with the run's own final numbers
  again = task.evaluate(w, "valid_small", progress=False)
  assert again["valid_small"]["auc"] == pytest.approx(full["valid_small"]["auc"], abs=1e-6)

  # the trained run serves as the re-ranking scorer of issue #6, with the same P(Yes) as its own evaluation
  from jaxrec.index.llm_scorer import make_llm_scorer

  runner = llm_task.Runner(config)
  scorer = make_llm_scorer(str(w), runner.dataset.item_text)
  table = runner.table("valid_small", split_obj=llm_rows)  # the 24 rows the tiny run's final figures cover
  params = loop.restore_params(run_dir.read_config(w), w, runner.params)
  want = runner.scores(params, table)[:5]
  sp = table.split
  got = scorer({"user": sp.user[:5], "item": sp.item[:5], "history": sp.history[:5],
                "history_label": sp.history_label[:5]})
  # both score in bf16 (config.eval_dtype) but in other batches, so their float32 sums of bf16 products add up in
  # another order: ~1e-5 apart, where float32 scoring agrees to 1e-7
  np.testing.assert_allclose(got, want, atol=1e-4)

  # shared-prefix scoring (the default: rows of one user and history run their prompt prefix once, the <UserID>
  # slot's vector inside it) gives the per-prompt scores
  shared = runner.scores(params, table)
  runner.config.shared_prefix = False
  np.testing.assert_allclose(shared, runner.scores(params, table), atol=1e-4)  # bf16, other batches (above)
  assert len(np.unique(sp.user)) < len(sp.user)  # some rows do share a prefix

  # a final evaluation's memo: rows already scored with these params are read back, not run (valid_small ⊂ valid)
  for shared_prefix in (True, False):
    runner.config.shared_prefix = shared_prefix
    memo, ran = scoring.ScoreMemo(), []
    real_shared = runner.scorer.shared
    runner.scorer.shared = lambda p, enc, *a, **k: ran.append(len(enc)) or real_shared(p, enc, *a, **k)
    first = runner.scores(params, runner.table("valid_small", split_obj=llm_rows.take(np.arange(16))), memo)
    both = runner.scores(params, table, memo)  # rows 0-15 are the first call's
    del runner.scorer.shared
    if shared_prefix:
      assert ran == [16, len(sp.user) - 16]
    np.testing.assert_array_equal(both[:16], first)
    np.testing.assert_allclose(both, runner.scores(params, table), atol=1e-4)  # bf16, other batches (above)
    assert memo.missing(params, scoring.row_keys(table.encodings, prefix_lib.row_fields(sp))).size == 0
    assert memo.missing(dict(params), [b"x"]).size == 1  # other parameters: nothing reused
  runner.config.shared_prefix = True

  # restore_params rebuilds the same frozen subtrees, and the trained ones moved
  for name in ("llm", "cf"):
    for a, b in zip(jax.tree.leaves(params[name]), jax.tree.leaves(runner.params[name])):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  for name in ("fece", "lora"):
    assert any(np.abs(np.asarray(a) - np.asarray(b)).max() > 0
               for a, b in zip(jax.tree.leaves(params[name]), jax.tree.leaves(runner.params[name])))


def test_tallrec_reference_is_any_finished_cf_run_and_is_checked(full_run, tiny_config, tmp_path):
  w, _, _, _ = full_run("ml1m")  # its MF run (w/cf) is a CF run on the same dataset
  config = tiny_config("tallrec_ml1m")
  config.eval.reference_cf = str(w / "cf")
  finals = task.train(config, tmp_path / "run", progress=False)
  assert not (tmp_path / "run" / "cf").exists()  # nothing trained: the named run is the reference
  rows = ev.read_arrays(tmp_path / "run" / "per_row" / "valid.npz")
  split = sample_rows(load_dataset(config.data).splits["valid"], config.final_eval_rows, config.data.seed)
  np.testing.assert_array_equal(split.item, rows["item"])
  mf = cf_task.row_scorer(w / "cf")(split)  # MF on the run's own rows: the reference side of the pairing
  vs = finals["valid"]["vs_cf"]
  assert vs["model"] == "mf" and vs["all"]["auc"]["a"] == pytest.approx(M.auc(rows["label"], mf), abs=1e-12)
  assert vs["all"]["auc"]["diff"] == pytest.approx(M.auc(rows["label"], rows["score"]) - M.auc(rows["label"], mf),
                                                   abs=1e-12)
  # an LLM run, or no run at all, is refused in one line naming the field, before anything is written
  for ref, expect in ((w, "expected a CF run on ml1m_collm"), (tmp_path / "nowhere", "config.json: missing")):
    config = tiny_config("tallrec_ml1m")
    config.eval.reference_cf = str(ref)
    with pytest.raises(JaxrecError, match="config.eval.reference_cf: .*" + expect):
      task.train(config, tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused").exists()
  # CoLLM's CF model gets the same check, and must be the model config.model.cf names
  for ref, name, expect in ((w, "mf", "is a llmrec run"), (w / "cf", "lightgcn", "of 'mf' on ml1m_collm; expected a CF "
                                                                                 "run of 'lightgcn' on ml1m_collm")):
    config = tiny_config("ml1m")
    config.model.cf.name, config.model.cf.workdir = name, str(ref)
    with pytest.raises(JaxrecError, match="config.model.cf.workdir: .*" + expect):
      task.train(config, tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused").exists()


def test_a_tallrec_run_without_a_reference_resumes_with_one(tmp_path):
  # runs made before TALLRec configs had cf_train / eval.reference_cf train exactly as they do now: not a conflict
  config = _config("tallrec_ml1m")
  old = json.loads(config.to_json_best_effort(sort_keys=True))
  del old["cf_train"], old["eval"]["reference_cf"]
  (tmp_path / "config.json").write_text(json.dumps(old))
  run_dir.check_config(config, tmp_path)
  config.stages[0].max_steps += 1  # what trains is still compared
  with pytest.raises(JaxrecError, match=r"config.stages\[0\].max_steps"):
    run_dir.check_config(config, tmp_path)


def test_a_run_resumes_with_another_attention_path(tmp_path):
  # runs made before 'causal_blocks' became the default used 'einsum' (or had no such field): the same function
  config = _config("ml1m", "tiny")
  assert config.model.attention == "causal_blocks"
  for saved in ("einsum", None):
    old = json.loads(config.to_json_best_effort(sort_keys=True))
    if saved is None:
      del old["model"]["attention"]
    else:
      old["model"]["attention"] = saved
    (tmp_path / "config.json").write_text(json.dumps(old))
    run_dir.check_config(config, tmp_path)
  config.model.keep_layers += 1  # the rest of the backbone is still compared
  with pytest.raises(JaxrecError, match=r"config.model.keep_layers"):
    run_dir.check_config(config, tmp_path)


def test_bookcrossing_collm_order_runs_lora_then_mapper(tiny_config, tmp_path):
  config = tiny_config("bookcrossing", "tiny,collm_order")
  # CoLLM's order: LoRA on the text-only prompt first, then the mapper
  assert [s.name for s in config.stages] == ["lora", "fece"] and config.stages[0].template == "tallrec_book"
  out = task.train(config, tmp_path, progress=False)
  assert 0.0 <= out["valid"]["auc"] <= 1.0
  stages = json.loads((tmp_path / "metrics.json").read_text())["stages"]
  assert [s["name"] for s in stages] == ["lora", "fece"]


def test_tiny_configs_of_every_dataset_build(shared_data):
  for name in CONFIGS:
    for arg in ("tiny", "tiny,collm_order", None):
      if name.startswith("tallrec") and arg and "collm_order" in arg:  # one stage: no order to choose
        with pytest.raises(JaxrecError, match="unknown token 'collm_order'; expected one of \\[.*'tiny'\\]"):
          _config(name, arg)
        continue
      config = _config(name, arg)
      llm_task.validate(config)
      assert len(config.stages) == (1 if config.model.cf.name == "none" else 2)


def test_long_budget_arg():
  """`:long` (about an hour on 2 cores), validation on a 512-row sample, final figures on whole splits. TALLRec:
  8,192 training rows, one pass of 1,024 steps, validation every 128. CoLLM-FaissRet (configs/ml1m.py and the
  configs built on it): 2,048 rows, the mapper 512 steps (two passes), LoRA 256 at lr 3e-4, validation every 64,
  whichever order the stages run in. The default keeps its ~10-minute budget."""
  for name, arg in [("ml1m", "long"), ("ml1m", "collm_order,long"), ("ml100k", "long"), ("bookcrossing", "long"),
                    ("amazon_book", "long"), ("tallrec_ml1m", "long")]:
    config, default = _config(name, arg), _config(name, None)
    llm_task.validate(config)
    assert (config.data.max_eval_rows, config.final_eval_rows) == (512, -1)
    if name == "tallrec_ml1m":
      assert config.data.max_train_rows == 8192
      assert [(s.max_steps, s.eval_every) for s in config.stages] == [(1024, 128)]
    else:
      assert config.data.max_train_rows == 2048
      by_name = {s.name: (s.num_epochs, s.max_steps, s.eval_every, s.optimizer.lr) for s in config.stages}
      assert by_name == {"fece": (2, 512, 64, 1e-3), "lora": (1, 256, 64, 3e-4)}
    assert (default.data.max_train_rows, default.stages[0].max_steps, default.final_eval_rows) == (1024, 48, -1)


def test_joint_arg_trains_mapper_and_lora_together_in_stage_two(tiny_config, tmp_path, monkeypatch):
  config = _config("ml1m", "tiny,joint")
  config.data.root = tiny_config("ml1m").data.root
  assert [(s.name, list(s.trainable)) for s in config.stages] == [("fece", ["fece/.*"]),
                                                                  ("joint", ["fece/.*", "lora/.*"])]
  seen, run_stage = [], loop.run_stage

  def spy(config, stage, index, params, **kw):  # each stage's params in and out
    out = run_stage(config, stage, index, params, **kw)
    seen.append((stage.name, jax.device_get(params), jax.device_get(out[0])))
    return out

  monkeypatch.setattr(loop, "run_stage", spy)
  task.train(config, tmp_path, progress=False)
  moved = {name: {part for part in ("fece", "lora", "llm") if any(
      np.abs(a - b).max() > 0 for a, b in zip(jax.tree.leaves(before[part]), jax.tree.leaves(after[part])))}
      for name, before, after in seen if "llm" in before}  # the LLM run's stages (not its CF pre-training)
  assert moved == {"fece": {"fece"}, "joint": {"fece", "lora"}}


def test_export_hf_merged_checkpoint_loads_in_transformers_with_our_logits(full_run, tmp_path):
  """launch/export.py --format=hf of the tiny CoLLM run: AutoModelForCausalLM's f32 logits equal the Flax decoder's
  with the (unmerged) LoRA applied, to 1e-4; the mapper and CF tables sit beside it as described in collm.json."""
  import torch
  from safetensors.numpy import load_file
  from transformers import AutoModelForCausalLM, AutoTokenizer

  from jaxrec.train.llm_export import export_run
  from launch import _cli, export as launch_export
  from llm_fixtures import left_padded_batch, torch_logits

  w = full_run("ml1m")[0]
  _cli.run(launch_export.main, ["export.py", f"--workdir={w}", "--format=hf", f"--output={tmp_path / 'hf'}"])
  config = run_dir.read_config(w)
  runner = llm_task.Runner(config)
  params = jax.device_get(loop.restore_params(config, w, runner.params))
  ids, mask, pos = left_padded_batch(vocab=runner.model.decoder.cfg.vocab_size)
  ours = runner.model.decoder.apply({"params": params["llm"], "lora": params["lora"]}, ids,
                                    attention_mask=mask)["logits"]
  base = runner.model.decoder.apply({"params": params["llm"]}, ids, attention_mask=mask)["logits"]
  model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"), dtype=torch.float32).eval()
  theirs = torch_logits(model, ids, mask, pos).logits.numpy()
  real = mask > 0
  assert np.abs(np.asarray(ours) - np.asarray(base))[real].max() > 1e-3  # the adapters matter here...
  assert np.abs(np.asarray(ours) - theirs)[real].max() <= 1e-4  # ...and are merged exactly
  tok = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
  assert tok("Yes, the user will like it").input_ids == runner.tok("Yes, the user will like it").input_ids

  info = json.loads((tmp_path / "hf" / "collm.json").read_text())
  mapper = load_file(str(tmp_path / "hf" / info["mapper"]["file"]))
  np.testing.assert_array_equal(mapper["fc1/kernel"], np.asarray(params["fece"]["fc1"]["kernel"]))
  assert set(load_file(str(tmp_path / "hf" / info["cf"]["file"]))) == set(info["cf"]["keys"])
  assert info["proj_token_num"] == runner.model.proj_token_num

  peft_dir = export_run(w, "peft", tmp_path / "peft")  # the default format: the same files training wrote
  assert (peft_dir / "adapter_model.safetensors").read_bytes() == (w / "adapter/adapter_model.safetensors").read_bytes()
  with pytest.raises(JaxrecError, match="--format=onnx: expected one of peft, hf"):
    export_run(w, "onnx")


def test_collm_bookcrossing_evaluates_a_tallrec_file_with_a_new_book(full_run, shared_data, tmp_path):
  """evaluate.py --split=FILE on BookCrossing: TALLRec's own record format; a book the run never had gets a new id,
  its title goes into the prompt, its CF vector is zero (the SASRec source has none), and the comparison with the
  CF model covers the same rows."""
  w, *_ = full_run("bookcrossing")
  records = json.loads((shared_data / "bookcrossing-tallrec" / "valid.json").read_text())[:8]
  records[0]["input"] = records[0]["input"].rsplit("target book ", 1)[0] + \
      'target book ""A Book Nobody Rated" written by Some One"?'
  (tmp_path / "test.json").write_text(json.dumps(records))
  got = task.evaluate(w, str(tmp_path / "test.json"), progress=False)["test"]
  assert got["n"] == 8 and got["vs_cf"]["all"]["n"] == 8 and 0 <= got["auc"] <= 1
  rows = ev.read_arrays(w / "eval" / "per_row" / "test.npz")
  assert np.isfinite(rows["score"]).all() and rows["item"][0] > rows["item"][1:].max()
  runner = llm_task.Runner(run_dir.read_config(w))
  split = llm_task.split_from_file(runner.config, tmp_path / "test.json", runner.dataset)
  table = runner.table("test", split_obj=split)
  assert "A Book Nobody Rated" in runner.tok.decode(table.encodings[0]["ids"])
