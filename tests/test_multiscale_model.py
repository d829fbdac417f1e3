"""The multi-scale recommender on a tiny random decoder: eq. 4 inside the decoder, the λ = 0 / K = 1 reductions to
plain LoRA, and gradients reaching only a stage's trainable leaves."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrec.llm import lora
from jaxrec.llm.config import LlamaConfig
from jaxrec.llm.model import Decoder, make_decoder
from jaxrec.models import multiscale as MS
from jaxrec.multiscale import config as C, pooling as P, text as T
from jaxrec.train.partition import partition, rules_from_stage
from jaxrec.tree import flatten
from jaxrec.train.multiscale_config import TRAINABLE
from jaxrec.train.steps import make_train_step

CFG = LlamaConfig(vocab_size=101, hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4, num_kv_heads=2,
                  head_dim=8, tie_word_embeddings=True)
# What `MS.from_config` builds for the configs below.
DECODER = make_decoder(CFG, lora_cfg=lora.LoraConfig(rank=4, alpha=8.0, dropout=0.0))
N_ITEMS = 12


@pytest.fixture(scope="module")
def llm_params():
  variables = jax.jit(Decoder(CFG).init)(jax.random.PRNGKey(0), jnp.zeros((1, 4), jnp.int32))
  return nn.meta.unbox(variables["params"])


def _model(llm_params, **overrides):
  mcfg = C.model_config(**{"lora": {"rank": 4, "alpha": 8.0, "dropout": 0.0}, "fusion": {"heads": 4},
                           "scales": {"num": 2}, "proj_dim": 16, **overrides})
  model = MS.from_config(mcfg, CFG, N_ITEMS)
  params = model.init(jax.random.PRNGKey(1), llm_params,
                      lora.LoraConfig(rank=4, alpha=8.0, dropout=0.0, targets=tuple(mcfg.lora.targets)))
  # Non-zero B and M, so every coupling term matters (fresh adapters have B = 0).
  rng = np.random.default_rng(2)  # numpy draws: eager jax draws would compile once per leaf shape
  params["lora"] = jax.tree.map(lambda x: jnp.asarray(0.3 * rng.normal(size=x.shape), jnp.float32), params["lora"])
  if "align" in params:
    params["align"]["m"] = params["align"]["m"] + jnp.asarray(0.3 * rng.normal(size=params["align"]["m"].shape),
                                                              jnp.float32)
  return model, params


def _table():
  rng = np.random.default_rng(0)
  lens = rng.integers(2, 5, N_ITEMS + 1)
  lens[0] = 0
  ids = rng.integers(3, 101, (N_ITEMS + 1, 4)).astype(np.int32)
  return T.ItemTokens(ids, lens.astype(np.int32), [1], [5, 6], [7], 0)


def _batch(b=4, n=3):
  table, rng = _table(), np.random.default_rng(1)
  hist = np.zeros((b, 5), np.int64)
  for r in range(b):
    k = [5, 3, 1, 0][r % 4]
    if k:
      hist[r, 5 - k:] = rng.integers(1, N_ITEMS + 1, k)
  pos, neg = rng.integers(1, N_ITEMS + 1, b), rng.integers(1, N_ITEMS + 1, n)
  batch = dict(T.encode_histories(table, hist, table.user_length(5)), pos_item=pos, neg_item=neg)
  batch.update({f"pos_{k}": v for k, v in T.encode_items(table, pos).items()})
  batch.update({f"neg_{k}": v for k, v in T.encode_items(table, neg).items()})
  return jax.tree.map(jnp.asarray, batch)


@jax.jit
def _run(llm, adapters, ids, mask):
  return DECODER.apply({"params": llm, "lora": adapters}, ids, attention_mask=mask, output_hidden_states=True,
                       compute_logits=False)["hidden_states"]


def _hidden(model, params, adapters, batch):
  assert model.decoder.lora_scale == DECODER.lora_scale and model.decoder.cfg == CFG
  return _run(params["llm"], adapters, batch["input_ids"], batch["attention_mask"])


def test_eq4_inside_the_decoder_equals_merged_kernels(llm_params):
  model, params = _model(llm_params, align={"lam": 0.5})  # two groups of one layer
  batch = _batch()
  got = _hidden(model, params, model.adapters(params), batch)
  # Reference: W + scale · (a_k b_k + λ Σ_j a_k m_jk b_j) written into the kernels, no adapters at all.
  flat, mods = lora.flatten(params["llm"]), lora.flatten_modules(params["lora"])
  groups = P.layer_groups(CFG.num_layers, model.k)
  m = np.asarray(params["align"]["m"])
  for path, ab in mods.items():
    l = int(path.split("/")[0].split("_")[1])
    gk = next(g for g, (s, e) in enumerate(groups) if s <= l < e)
    delta = np.asarray(ab["a"]) @ np.asarray(ab["b"])
    for j in range(model.k):
      if j != gk:
        partner = f"layers_{groups[j][0] + (l - groups[gk][0])}/" + path.split("/", 1)[1]
        delta = delta + 0.5 * np.asarray(ab["a"]) @ m[j, gk] @ np.asarray(mods[partner]["b"])
    flat[path + "/kernel"] = flat[path + "/kernel"] + model.decoder.lora_scale * delta
  zeros = jax.tree.map(jnp.zeros_like, params["lora"])  # same structure as above: one compiled program
  ref = _hidden(model, {"llm": lora.unflatten(flat)}, zeros, batch)
  for g, r in zip(got, ref):
    np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=2e-4, atol=2e-4)


def test_lambda_zero_and_one_scale_reduce_exactly_to_plain_lora(llm_params):
  batch = _batch()
  for overrides in ({"align": {"lam": 0.0}}, {"scales": {"num": 1}, "align": {"lam": 0.4}}):  # (λ = 0), (K = 1)
    model, params = _model(llm_params, **overrides)
    eff = model.adapters(params)
    for a, b in zip(jax.tree.leaves(eff), jax.tree.leaves(params["lora"])):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    got = _hidden(model, params, eff, batch)
    plain = _hidden(model, params, params["lora"], batch)  # standard LoRA: the decoder reads the adapters as they are
    for g, r in zip(got, plain):
      np.testing.assert_array_equal(np.asarray(g), np.asarray(r))
  # K = 1: the user vector is plain LoRA's last layer pooled over the whole history (α = 1).
  model, params = _model(llm_params, scales={"num": 1, "pooling": "mean"}, fusion={"kind": "mean"})
  out = jax.jit(model.encode_users)(params, batch)
  last = _hidden(model, params, params["lora"], batch)[-1]
  pooled = P.rms_normalize(P.mean_pool(last, P.window_mask(batch["segment"], 0, batch["attention_mask"])))
  z = pooled @ params["head"]["user"]
  np.testing.assert_allclose(np.asarray(out["z"]), np.asarray(z / jnp.linalg.norm(z, axis=-1, keepdims=True)),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(out["alpha"]), 1.0)


def test_gradients_reach_only_the_stages_trainable_leaves(llm_params):
  model, params = _model(llm_params, align={"lam": 0.5}, loss={"beta": 0.5})
  batch, rng = _batch(), jax.random.PRNGKey(3)
  loss_fn = MS.make_loss_fn(model)
  trainable, frozen = partition(params, rules_from_stage(TRAINABLE))
  assert "llm" not in trainable and set(trainable) == {"lora", "align", "pool", "fusion", "head"}
  grads = jax.jit(jax.grad(lambda t, f: loss_fn(t, f, batch, rng)[0]))(trainable, frozen)
  for path, g in flatten(grads).items():
    assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).max() > 0, path
  # A stage that trains only the fusion and heads: one step moves exactly those leaves.
  trainable, frozen = partition(params, rules_from_stage(["fusion/.*", "head/.*"]))
  assert set(trainable) == {"fusion", "head"}
  before = jax.tree.map(np.asarray, trainable)
  step = make_train_step(loss_fn, optax.adam(1e-2))
  new, _, metrics = step(jax.tree.map(jnp.copy, trainable), frozen, optax.adam(1e-2).init(trainable), batch, rng)
  assert set(flatten(new)) == set(flatten(before))
  assert all(not np.array_equal(np.asarray(new_leaf), before_leaf)
             for new_leaf, before_leaf in zip(jax.tree.leaves(new), jax.tree.leaves(before)))
  assert np.isfinite(float(metrics["loss"])) and {"rec_loss", "align_loss", "alpha_0"} <= set(metrics)


def test_centres_are_the_fitted_samples_means(llm_params):
  # Centring is what keeps every user from getting the same top-K (see jaxrec.models.multiscale): after fitting on
  # a sample, that sample's user scale vectors and item vectors average to zero (heads are linear, norms off).
  model, params = _model(llm_params, score_norm=False)
  params["lora"] = jax.tree.map(jnp.zeros_like, params["lora"])  # fresh adapters, as when `build` fits
  batch = _batch(b=4, n=3)
  users = {k: batch[k] for k in ("input_ids", "attention_mask", "segment")}
  items = {k: batch[f"neg_{k}"] for k in ("input_ids", "attention_mask", "segment")}
  assert not np.asarray(params["center"]["user"]).any()
  fitted = model.fit_centers(params, users, items)
  assert fitted["center"]["user"].shape == (model.k, CFG.hidden_size)
  scales = jax.jit(model.encode_users)(fitted, users)["scales"]  # [B, K, d]
  np.testing.assert_allclose(np.asarray(jnp.mean(scales, 0)), 0.0, atol=1e-5)
  v = jax.jit(model.encode_items)(fitted, items["input_ids"], items["attention_mask"], items["segment"],
                                  batch["neg_item"])
  np.testing.assert_allclose(np.asarray(jnp.mean(v, 0)), 0.0, atol=1e-5)
  off, off_params = _model(llm_params, center=False)
  assert "center" not in off_params and off.fit_centers(off_params, users, items) is off_params
