"""Flax decoder vs transformers' PyTorch models on tiny random checkpoints (f32 logits: max abs diff ≤ 1e-4)."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxrec.llm import loading
from jaxrec.llm.model import Decoder
from llm_fixtures import left_padded_batch, tiny_hf, torch_logits

TOL = 1e-4


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def pair(request, tmp_path_factory):
  d = tmp_path_factory.mktemp(request.param)
  ref = tiny_hf(request.param, d)
  cfg, params = loading.load_hf(str(d))
  return request.param, ref, cfg, params, d


def test_logits_and_hidden_states_match_transformers_with_left_padding(pair):
  kind, ref, cfg, params, _ = pair
  assert cfg.model_type == kind and cfg.attention_bias == (kind == "qwen2")
  assert cfg.tie_word_embeddings == (kind == "qwen2") and bool(cfg.rope_scaling) == (kind == "llama")
  ids, mask, pos = left_padded_batch()
  want = torch_logits(ref, ids, mask, pos, output_hidden_states=True)
  got = Decoder(cfg).apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask),
                           output_hidden_states=True)
  real = mask > 0  # padded positions are garbage in both and are not compared
  assert np.abs(np.asarray(got["logits"]) - want.logits.numpy())[real].max() <= TOL
  assert len(got["hidden_states"]) == len(want.hidden_states) == cfg.num_layers + 1
  for mine, theirs in zip(got["hidden_states"], want.hidden_states):
    assert np.abs(np.asarray(mine) - theirs.numpy())[real].max() <= TOL
  assert np.isfinite(np.asarray(got["logits"])).all()  # fully padded rows stay finite


def test_logit_subsets_equal_slices_of_full_logits(pair):
  _, _, cfg, params, _ = pair
  ids, mask, _ = left_padded_batch()
  model = Decoder(cfg)
  full = np.asarray(model.apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))["logits"])
  positions = np.array([[10, 9], [10, 5], [10, 8]])
  tokens = np.array([7, 42, 99])
  sub = model.apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask),
                    logit_positions=jnp.asarray(positions), logit_token_ids=jnp.asarray(tokens))["logits"]
  assert sub.shape == (3, 2, 3)
  expect = np.take_along_axis(full, positions[..., None], axis=1)[..., tokens]
  np.testing.assert_allclose(np.asarray(sub), expect, atol=1e-5)


def test_inputs_embeds_path_equals_token_ids_path(pair):
  _, _, cfg, params, _ = pair
  ids, mask, _ = left_padded_batch()
  model = Decoder(cfg)
  embeds = model.apply({"params": params}, jnp.asarray(ids), method=Decoder.embed)
  a = model.apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))["logits"]
  b = model.apply({"params": params}, inputs_embeds=embeds, attention_mask=jnp.asarray(mask))["logits"]
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_sharded_bf16_checkpoint_loads_and_matches(tmp_path):
  import torch

  ref = tiny_hf("llama", tmp_path / "f32", seed=1)
  ref.to(torch.bfloat16).save_pretrained(str(tmp_path / "bf16"), max_shard_size="20KB")
  assert (tmp_path / "bf16" / "model.safetensors.index.json").is_file()
  cfg, params = loading.load_hf(str(tmp_path / "bf16"))
  ids, mask, pos = left_padded_batch()
  want = torch_logits(ref.to(torch.float32), ids, mask, pos).logits.numpy()  # same bf16-rounded weights, in f32
  got = np.asarray(Decoder(cfg).apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))["logits"])
  assert np.abs(got - want)[mask > 0].max() <= TOL
  # frozen weights may be stored in bf16 while computing in f32
  _, p16 = loading.load_hf(str(tmp_path / "bf16"), dtype=jnp.bfloat16)
  assert p16["layers_0"]["self_attn"]["q_proj"]["kernel"].dtype == jnp.bfloat16
  got16 = np.asarray(Decoder(cfg).apply({"params": p16}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))["logits"])
  assert np.abs(got16 - want)[mask > 0].max() <= TOL


def test_bf16_compute_tracks_f32_and_its_dot_gradients_are_exact_f32_accumulation(tmp_path):
  """bf16 compute (f32-accumulated dots, see model._f32_acc_dot) stays near the f32 reference, and the hand-written
  backward of that dot equals autodiff of the same product done in float32 on the bf16-rounded operands."""
  import jax

  from jaxrec.llm.model import _f32_acc_dot

  ref = tiny_hf("llama", tmp_path, seed=2)
  cfg, params = loading.load_hf(str(tmp_path))
  ids, mask, pos = left_padded_batch()
  want = torch_logits(ref, ids, mask, pos).logits.numpy()
  got = Decoder(cfg, dtype=jnp.bfloat16).apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))
  err = np.abs(np.asarray(got["logits"], np.float32) - want)[mask > 0]
  assert err.max() <= 0.05 * max(1.0, np.abs(want).max())  # bf16 keeps ~3 significant digits; tiny logits are O(1)

  rng = np.random.RandomState(0)
  x = jnp.asarray(rng.randn(2, 5, 16), jnp.bfloat16)  # [B, T, in]
  w = jnp.asarray(rng.randn(16, 8), jnp.bfloat16)  # [in, out]
  ct = jnp.asarray(rng.randn(2, 5, 8), jnp.float32)  # fixed cotangent
  f = lambda x, w: jnp.sum(_f32_acc_dot(x, w).astype(jnp.float32) * ct)
  f32 = lambda x, w: jnp.sum((x @ w) * ct.astype(jnp.bfloat16).astype(jnp.float32))
  dx, dw = jax.grad(f, argnums=(0, 1))(x, w)
  rx, rw = jax.grad(f32, argnums=(0, 1))(x.astype(jnp.float32), w.astype(jnp.float32))
  assert dx.dtype == jnp.bfloat16 and dw.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(dx, np.float32), rx, rtol=1e-2, atol=1e-2)
  np.testing.assert_allclose(np.asarray(dw, np.float32), rw, rtol=1e-2, atol=1e-2)
