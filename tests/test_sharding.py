"""A LoRA train step on the simulated 2-device mesh gives the loss and update of the 1-device step.

Tolerance: 1e-5 absolute on the loss and 1e-6 on the updated adapters (f32; the sharded run differs only in the
order of the cross-device reductions).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrec import sharding
from jaxrec.llm import loading, lora
from jaxrec.llm.model import Decoder, make_decoder
from llm_fixtures import tiny_hf

LCFG = lora.LoraConfig(rank=4, alpha=8.0, dropout=0.0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  d = tmp_path_factory.mktemp("tiny")
  tiny_hf("llama", d, hidden_size=64, num_attention_heads=4, num_key_value_heads=2)
  cfg, params = loading.load_hf(str(d))
  boxed = jax.eval_shape(lambda: Decoder(cfg).init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32)))
  axes = sharding.logical_axes(boxed["params"])
  adapters = lora.init(params, LCFG, jax.random.key(1))
  adapters = jax.tree.map(lambda x: x + 0.01 if x.shape[0] == LCFG.rank else x, adapters)  # B ≠ 0: A gets grads
  rng = np.random.RandomState(0)
  batch = {"input_ids": rng.randint(3, 101, (4, 12)).astype(np.int32), "attention_mask": np.ones((4, 12), np.int32),
           "target": rng.randint(3, 101, (4,)).astype(np.int32)}
  batch["attention_mask"][1, :5] = 0
  return cfg, params, axes, jax.tree.map(np.asarray, adapters), batch  # numpy: donation must not eat them


def _step(model, tx):
  def loss_fn(ad, base, batch):
    t = batch["input_ids"].shape[1]
    out = model.apply({"params": base, "lora": ad}, batch["input_ids"], attention_mask=batch["attention_mask"],
                      logit_positions=jnp.full((batch["input_ids"].shape[0], 1), t - 1))
    logp = jax.nn.log_softmax(out["logits"][:, 0])
    return -jnp.take_along_axis(logp, batch["target"][:, None], axis=-1).mean()

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(ad, opt_state, base, batch):
    loss, g = jax.value_and_grad(loss_fn)(ad, base, batch)
    updates, opt_state = tx.update(g, opt_state, ad)
    return optax.apply_updates(ad, updates), opt_state, loss

  return step


def _run(setup, mesh):
  cfg, params, axes, adapters, batch = setup
  model = make_decoder(cfg, lora_cfg=LCFG)
  tx = optax.adamw(1e-2)
  base = sharding.shard_tree(params, axes, mesh)
  ad = sharding.shard_tree(adapters, lora.axes(adapters, axes), mesh)
  opt_state = tx.init(ad)
  b = sharding.shard_batch(batch, mesh)
  step = _step(model, tx)
  losses = []
  for _ in range(2):
    ad, opt_state, loss = step(ad, opt_state, base, b)
    losses.append(float(loss))
  return losses, jax.tree.map(np.asarray, ad), base, b


def test_two_device_mesh_matches_one_device(setup):
  assert len(jax.devices()) == 2, "conftest requests a simulated 2-device CPU mesh"
  one, ad1, _, _ = _run(setup, sharding.make_mesh(data=1, model=1, devices=jax.devices()[:1]))
  dp, ad_dp, _, b_dp = _run(setup, sharding.make_mesh(data=2, model=1))
  tp, ad_tp, base_tp, _ = _run(setup, sharding.make_mesh(data=1, model=2))
  # the batch is really split over `data`, and weights over `model` where divisible
  assert b_dp["input_ids"].sharding.spec == jax.sharding.PartitionSpec("data", None)
  assert len(b_dp["input_ids"].addressable_shards) == 2
  q = base_tp["layers_0"]["self_attn"]["q_proj"]["kernel"]
  assert q.sharding.spec == jax.sharding.PartitionSpec(None, "model")
  assert q.addressable_shards[0].data.shape == (64, 32)
  np.testing.assert_allclose(dp, one, atol=1e-5)
  np.testing.assert_allclose(tp, one, atol=1e-5)
  assert one[1] < one[0]  # the step really trains
  for a, b, c in zip(jax.tree.leaves(ad1), jax.tree.leaves(ad_dp), jax.tree.leaves(ad_tp)):
    np.testing.assert_allclose(b, a, atol=1e-6)
    np.testing.assert_allclose(c, a, atol=1e-6)


def test_indivisible_dimensions_are_replicated():
  mesh = sharding.make_mesh(data=1, model=2)
  assert sharding.spec_for(("vocab", "embed"), (101, 64), mesh) == jax.sharding.PartitionSpec(None, None)
  assert sharding.spec_for(("vocab", "embed"), (100, 64), mesh) == jax.sharding.PartitionSpec("model", None)
  with pytest.raises(ValueError, match="does not use the 2 available devices"):
    sharding.make_mesh(data=3, model=1)
