"""Functional LoRA: zero-init, merge/unmerge, gradient flow, and PEFT round trips both ways (f32 ≤ 1e-4)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrec.llm import loading, lora
from jaxrec.llm.model import make_decoder
from llm_fixtures import left_padded_batch, tiny_hf, torch_logits

TOL = 1e-4
CFG = lora.LoraConfig(rank=4, alpha=8.0, dropout=0.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  d = tmp_path_factory.mktemp("base")
  ref = tiny_hf("llama", d)
  cfg, params = loading.load_hf(str(d))
  return d, ref, cfg, params


def _random_b(adapters, seed=1):
  leaves, tree = jax.tree.flatten(adapters)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(tree, [x if x.shape[0] != CFG.rank else 0.1 * jax.random.normal(k, x.shape)
                                   for x, k in zip(leaves, keys)])


def _run(cfg, params, adapters=None, lcfg=CFG):
  ids, mask, _ = left_padded_batch()
  variables = {"params": params} | ({"lora": adapters} if adapters is not None else {})
  model = make_decoder(cfg, lora_cfg=lcfg)
  return np.asarray(model.apply(variables, jnp.asarray(ids), attention_mask=jnp.asarray(mask))["logits"])


def test_targets_by_regex_and_zero_init(tiny):
  _, _, cfg, params = tiny
  adapters = lora.init(params, CFG, jax.random.key(0))
  mods = lora.flatten_modules(adapters)
  assert sorted(mods) == [f"layers_{i}/self_attn/{m}_proj" for i in range(2) for m in "qv"]
  assert mods["layers_0/self_attn/q_proj"]["a"].shape == (64, 4)
  assert mods["layers_0/self_attn/v_proj"]["b"].shape == (4, 32)
  assert all(float(jnp.abs(m["b"]).max()) == 0.0 for m in mods.values())
  np.testing.assert_array_equal(_run(cfg, params, adapters), _run(cfg, params))
  only_layer1_mlp = lora.LoraConfig(targets=(r"layers_1/mlp/.*_proj/kernel",))
  assert sorted(lora.flatten_modules(lora.init(params, only_layer1_mlp, jax.random.key(0)))) == [
      "layers_1/mlp/down_proj", "layers_1/mlp/gate_proj", "layers_1/mlp/up_proj"]


def test_merge_equals_unmerged_forward_and_unmerge_restores(tiny):
  _, _, cfg, params = tiny
  adapters = _random_b(lora.init(params, CFG, jax.random.key(0)))
  with_adapters = _run(cfg, params, adapters)
  assert np.abs(with_adapters - _run(cfg, params)).max() > 1e-3  # the adapters really change the model
  merged = lora.merge(params, adapters, CFG.scale)
  np.testing.assert_allclose(_run(cfg, merged), with_adapters, atol=TOL)
  restored = lora.unmerge(merged, adapters, CFG.scale)
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_gradients_reach_only_adapters(tiny):
  _, _, cfg, params = tiny
  adapters = lora.init(params, CFG, jax.random.key(0))
  ids, mask, _ = left_padded_batch()
  model = make_decoder(cfg, lora_cfg=CFG)

  def loss(ad, base):
    out = model.apply({"params": base, "lora": ad}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    return out["logits"][:, -1].mean()

  g_ad = jax.grad(loss)(adapters, params)
  assert jax.tree.structure(g_ad) == jax.tree.structure(adapters)
  for m in lora.flatten_modules(g_ad).values():
    assert float(jnp.abs(m["b"]).max()) > 0  # B gets gradient at init; A's is zero until B moves (as in PEFT)
  # A train step over (adapters) leaves the base bit-identical by construction: it is not an argument of grad.
  before = jax.tree.map(np.asarray, params)
  new_ad = jax.tree.map(lambda p, g: p - 0.1 * g, adapters, g_ad)
  assert any(float(jnp.abs(a - b).max()) > 0 for a, b in zip(jax.tree.leaves(new_ad), jax.tree.leaves(adapters)))
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(before)):
    np.testing.assert_array_equal(np.asarray(a), b)


def test_jaxrec_adapters_load_in_peft(tiny, tmp_path):
  from peft import PeftModel

  d, ref, cfg, params = tiny
  adapters = _random_b(lora.init(params, CFG, jax.random.key(3)))
  lora.save_peft(tmp_path / "adapter", adapters, CFG, num_layers=cfg.num_layers, base_model=str(d))
  peft_model = PeftModel.from_pretrained(ref, str(tmp_path / "adapter")).eval()
  ids, mask, pos = left_padded_batch()
  want = torch_logits(peft_model, ids, mask, pos).logits.numpy()
  assert np.abs(_run(cfg, params, adapters) - want)[mask > 0].max() <= TOL
  peft_model.unload()


def test_peft_adapters_load_in_jaxrec(tiny, tmp_path):
  import torch
  from peft import LoraConfig, get_peft_model

  d, _, cfg, params = tiny
  base = tiny_hf("llama", tmp_path / "base2")  # same seed → same weights as `params`
  torch.manual_seed(7)
  pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "down_proj"],
                                       init_lora_weights=False, lora_dropout=0.0)).eval()
  pm.save_pretrained(str(tmp_path / "peft"))
  adapters, lcfg = lora.load_peft(tmp_path / "peft")
  assert lcfg.rank == 4 and lcfg.scale == 2.0
  assert len(lora.flatten_modules(adapters)) == 6
  ids, mask, pos = left_padded_batch()
  want = torch_logits(pm, ids, mask, pos).logits.numpy()
  assert np.abs(_run(cfg, params, adapters, lcfg) - want)[mask > 0].max() <= TOL


def test_pickled_adapter_is_refused(tmp_path):
  from jaxrec.errors import JaxrecError

  (tmp_path / "adapter_model.bin").write_bytes(b"not loaded")
  with pytest.raises(JaxrecError, match="pickle and is never loaded"):
    lora.load_peft(tmp_path)
