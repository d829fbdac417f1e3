"""Layers under one `nn.scan` (issue #13): the stacked layout computes what the per-layer one does, forward and
backward, trains the same, exports the same PEFT files; `launch/plan.py` compiles a 7B-shaped step abstractly."""

import importlib.util
import json
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrec.errors import JaxrecError
from jaxrec.llm import stacking
from jaxrec.llm.config import LlamaConfig
from jaxrec.llm import model as model_lib
from jaxrec.llm.model import Decoder
from llm_fixtures import tiny_decoder

REPO = pathlib.Path(__file__).resolve().parents[1]
CFG, _PARAMS, _ADAPTERS = tiny_decoder()


@pytest.fixture(scope="module")
def weights():
  return _PARAMS, _ADAPTERS


def test_scanned_decoder_equals_the_layer_loop_forward_and_backward(weights):
  params, adapters = weights
  rng = np.random.RandomState(0)
  ids = rng.randint(3, 101, (3, 10))
  mask = np.ones_like(ids)
  mask[1, :4] = 0
  stacked = (stacking.stack_layers(params), stacking.stack_layers(adapters))
  # nn.scan's own init lays params out exactly as stack_layers does
  init = jax.eval_shape(Decoder(CFG, scan_layers=True).init, jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
  assert jax.tree.structure(nn.meta.unbox(init["params"])) == jax.tree.structure(stacked[0])

  def loss(ad, base, scan):
    out = Decoder(CFG, scan_layers=scan).apply({"params": base, "lora": ad}, ids, attention_mask=mask,
                                               output_hidden_states=True)
    return jnp.sum(out["logits"][:, -1] ** 2), out

  (l0, o0), g0 = jax.value_and_grad(loss, has_aux=True)(adapters, params, False)
  (l1, o1), g1 = jax.value_and_grad(loss, has_aux=True)(stacked[1], stacked[0], True)
  np.testing.assert_allclose(o1["logits"], o0["logits"], atol=1e-5)
  assert len(o1["hidden_states"]) == CFG.num_layers + 1
  for a, b in zip(o1["hidden_states"], o0["hidden_states"]):
    np.testing.assert_allclose(a, b, atol=1e-5)
  np.testing.assert_allclose(l1, l0, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(stacking.unstack_layers(g1)), jax.tree.leaves(g0)):
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_stacking_round_trips_and_refuses_uneven_layers(weights):
  params, adapters = weights
  back = stacking.unstack_layers(stacking.stack_layers(params))
  assert jax.tree.structure(back) == jax.tree.structure(params)
  for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)
  uneven = {k: v for k, v in adapters.items() if k != "layers_1"}
  with pytest.raises(JaxrecError, match="every layer alike"):
    stacking.stack_layers(uneven, "config.model.lora.targets")


def _config(name, arg):
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", REPO / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


@pytest.mark.slow
def test_tiny_collm_trains_the_same_with_scan_and_exports_per_layer_peft(shared_data, tmp_path):
  from safetensors.numpy import load_file

  from jaxrec.train import task

  finals, adapters = {}, {}
  for scan in (False, True):
    config = _config("ml1m", "tiny")
    config.data.root = str(shared_data)
    config.model.scan_layers = scan
    config.model.lora.dropout = 0.0  # nn.scan draws each layer's dropout mask from its own split of the key
    config.eval_dtype = ""  # score in float32: a tiny random model's bf16 scores tie, and AUC counts ties
    if scan:  # the CF model of the first run serves both
      config.model.cf.workdir = str(tmp_path / "False" / "cf")
    finals[scan] = task.train(config, tmp_path / str(scan), progress=False)
    adapters[scan] = load_file(tmp_path / str(scan) / "adapter" / "adapter_model.safetensors")
  for split in ("valid", "valid_small"):
    for metric in ("auc", "uauc"):  # UAUC is nan where no user of the tiny split has both labels
      assert finals[True][split][metric] == pytest.approx(finals[False][split][metric], abs=2e-4, nan_ok=True)
  assert sorted(adapters[True]) == sorted(adapters[False])  # model.layers.N.… names, one per layer
  for key, value in adapters[False].items():
    np.testing.assert_allclose(adapters[True][key], value, atol=1e-5)

  # a run made before these fields existed (its config.json lacks them) still evaluates and resumes
  path = tmp_path / "False" / "config.json"
  raw = json.loads(path.read_text())
  del raw["model"]["scan_layers"], raw["model"]["attention"], raw["shared_prefix"], raw["eval_dtype"]
  path.write_text(json.dumps(raw))
  again = task.evaluate(tmp_path / "False", "valid_small", progress=False)
  assert again["valid_small"]["auc"] == pytest.approx(finals[False]["valid_small"]["auc"], abs=1e-6)
  config = _config("ml1m", "tiny")
  config.data.root, config.model.lora.dropout = str(shared_data), 0.0  # the default eval_dtype: bf16
  assert 0.0 <= task.train(config, tmp_path / "False", progress=False)["valid_small"]["auc"] <= 1.0
  assert json.loads(path.read_text())["eval_dtype"] == "bfloat16"  # how it scores may change on resume


def _n_params(cfg: LlamaConfig) -> int:
  d, f, h, kv, dh = cfg.hidden_size, cfg.intermediate_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
  layer = d * h * dh + 2 * d * kv * dh + h * dh * d + 3 * d * f + 2 * d
  if cfg.attention_bias:
    layer += h * dh + 2 * kv * dh
  return cfg.num_layers * layer + cfg.vocab_size * d * (1 if cfg.tie_word_embeddings else 2) + d


@pytest.mark.slow
def test_plan_a_7b_lora_step_on_a_two_device_mesh():
  """Vicuna-7B-shaped CoLLM-FaissRet with the paper's settings, compiled for abstract params on 2 simulated devices:
  bytes per device follow from the shapes and shardings; FLOPs of a LoRA step lie between 2× and 3.5× the forward
  matmuls (no weight gradients for frozen kernels); compiling under scan takes seconds, not minutes."""
  from jaxrec import sharding
  from jaxrec.llm import shapes
  from jaxrec.train import plan

  config = _config("ml1m", "paper")
  cfg, _ = shapes.resolve("vicuna_7b", None, REPO / "configs" / "shapes")
  n = _n_params(cfg)
  assert 6.5e9 < n < 6.9e9
  d, out = cfg.hidden_size, cfg.num_heads * cfg.head_dim  # q and v both map 4096 → 4096 here
  for data, model, split in ((2, 1, 1), (1, 2, 2)):
    mesh = sharding.make_mesh(data, model, devices=jax.devices()[:2])
    p = plan.plan(config, cfg, mesh, seq_len=128)
    assert p.params_bytes == pytest.approx(2 * n / split, rel=0.03)  # bf16; the model axis splits the big kernels
    # float32 A [d, 8] whole on each device, B [8, out] split over the model axis; q and v in every layer
    assert p.adapter_bytes == pytest.approx(4 * cfg.num_layers * 2 * 8 * (d + out / split), rel=1e-6)
    assert p.trainable == ["lora"]
    forward = 2 * 16 * 128 * (n - 2 * cfg.vocab_size * cfg.hidden_size) / (data * model)  # per device
    assert 2.0 * forward < p.train_flops < 3.5 * forward
    assert p.compile_s < 120


def _plan_cli(*args):
  import os
  import subprocess
  import sys

  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the script simulates its own mesh
  return subprocess.run([sys.executable, str(REPO / "launch" / "plan.py"), *args], capture_output=True, text=True,
                        env=env, cwd=REPO)


@pytest.mark.slow
def test_plan_cli_reads_the_default_backbone_without_weights_and_refuses_bad_input():
  out = _plan_cli("--config=configs/tallrec_ml1m.py", "--mesh=data:1,model:2", "--seq_len=64")
  assert out.returncode == 0, out.stderr
  assert "backbone SmolLM2-135M (embedded): 4 of 30 layers" in out.stdout
  assert "mesh data=1 × model=2" in out.stdout and "train step" in out.stdout and "score step" in out.stdout
  for args, what in ((("--config=configs/ml1m.py", "--mesh=data:0"), "--mesh"),
                     (("--config=configs/ml1m.py", "--llm_shape=nope"), "--llm_shape"),
                     (("--config=configs/ml1m.py", "--mesh=data:3", "--config.batch_size=8"), "config.batch_size")):
    bad = _plan_cli(*args)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and what in bad.stderr, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("attention", ["dpa", "causal_blocks"])
def test_attention_paths_equal_the_einsum_path(weights, attention, monkeypatch):
  """attention='dpa' (jax.nn.dot_product_attention: cuDNN's fused kernel on GPU) and 'causal_blocks' (each block of
  queries scored against only the keys it can see; blocks of 4 here so 9 tokens make three, the last one short)
  compute what the default does, left padding included, with a shared prefix too, and give the same LoRA gradients.
  Tolerance 1e-5 absolute on logits (float32; the paths differ only in summation order)."""
  monkeypatch.setattr(model_lib, "_Q_BLOCK", 4)
  params, adapters = weights
  rng = np.random.RandomState(2)
  ids = rng.randint(3, 101, (3, 9))
  mask = np.ones_like(ids)
  mask[2, :5] = 0
  real = mask[:, :, None] > 0  # padded positions' outputs are never read, and differ between the paths
  variables = {"params": params, "lora": adapters}
  want = Decoder(CFG).apply(variables, ids, attention_mask=mask)["logits"]
  got = Decoder(CFG, attention=attention).apply(variables, ids, attention_mask=mask)["logits"]
  np.testing.assert_allclose(np.where(real, got, 0), np.where(real, want, 0), atol=1e-5)
  pre = Decoder(CFG, attention=attention).apply(variables, ids[:, :4], attention_mask=mask[:, :4], return_kv=True)
  rest = Decoder(CFG, attention=attention).apply(variables, ids[:, 4:], attention_mask=mask[:, 4:],
                                                 past_kv=pre["kv"], past_mask=mask[:, :4])
  np.testing.assert_allclose(rest["logits"][:, -1], want[:, -1], atol=1e-5)

  def loss(ad, attn):
    out = Decoder(CFG, attention=attn).apply({"params": params, "lora": ad}, ids, attention_mask=mask)["logits"]
    return jnp.sum(jnp.where(real, out, 0.0) ** 2)

  g_want, g_got = jax.grad(loss)(adapters, "einsum"), jax.grad(loss)(adapters, attention)
  for a, b in zip(jax.tree.leaves(g_got), jax.tree.leaves(g_want)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(b))) + 1e-7)
