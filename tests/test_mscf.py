"""The multi-scale recommender's collaborative tower ('mscf'): the score against a hand computation, the items' text
encodings against a direct decoder pass, a planted signal learned, and tiny runs on the real ML-1M top-K split
(adapter-free, and encoded by a finished multi-scale run's adapted decoder)."""

import json
import math
import os
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from conftest import REPO
from jaxrec import cf
from jaxrec.cf import synthetic
from jaxrec.errors import JaxrecError
from jaxrec.train import make_optimizer, make_train_step, partition, stage_config
from jaxrec.tree import merge


@pytest.fixture(scope="module")
def data():
  return synthetic.make_dataset(n_users=150, n_items=60, rows_per_user=30, max_history=10, seed=0)


def _build(data, item_text, **kw):
  cfg = ml_collections.ConfigDict(dict(dict(name="mscf", embed_dim=16, heads=4, init_std=0.1), **kw))
  return cf.build_model(cfg, data.n_users, data.n_items, data.splits["train"], item_text)


def _softmax(x, axis):
  e = np.exp(x - x.max(axis, keepdims=True))
  return e / e.sum(axis, keepdims=True)


def _fused(text, p):
  """[N, d] Σ_k α_k s^k per head chunk, float64, from text [N, K, D] and the params `p`."""
  n, k = text.shape[:2]
  s = np.einsum("nkD,kDr,krd->nkd", text.astype(np.float64), p["text_a"], p["text_b"])  # [N, K, d]
  w, q = p["fusion"]["w"], p["fusion"]["q"]  # [K, d, h, e], [h, e]
  e = np.einsum("nkd,kdhe,he->nkh", s, w, q) / math.sqrt(q.shape[-1])
  alpha = _softmax(e, 1)  # [N, K, h]
  h = alpha.shape[-1]
  return np.einsum("nkh,nkhc->nhc", alpha, s.reshape(n, k, h, -1)).reshape(n, -1)


def test_graph_variant_matches_a_hand_computed_propagation(data):
  """'mscf_gcn': item nodes start from q_i + fused text, then LightGCN: 2 rounds e_u ← R e_i, e_i ← Rᵀ e_u over the
  symmetric-normalised graph R, mean over rounds 0..2, logit = e_u · e_i. float64 numpy, |Δ| ≤ 1e-5."""
  k, d_text = 3, 12
  text = np.random.default_rng(0).normal(size=(data.n_items + 1, k, d_text)).astype(np.float32)
  model = _build(data, text, text_rank=5, name="mscf_gcn", num_layers=2)
  params = model.init(jax.random.PRNGKey(0))
  params["params"]["text_b"] = jax.random.normal(jax.random.PRNGKey(1), params["params"]["text_b"].shape)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
  u1 = data.n_users + 1
  ego = p["node_embed"].copy()
  ego[u1:] += _fused(text, p)
  r = np.asarray(params["consts"]["adj"], np.float64)  # [U + 1, I + 1]
  layers, xu, xi = [ego], ego[:u1], ego[u1:]
  for _ in range(2):
    xu, xi = r @ xi, r.T @ xu
    layers.append(np.concatenate([xu, xi]))
  nodes = np.mean(layers, axis=0)
  nodes[[0, u1]] = 0
  users, items = np.array([1, 5, 9, 0]), np.array([3, 0, 60, 7])
  want = (nodes[users] * nodes[items + u1]).sum(-1)
  got = np.asarray(model.logits(params, {"user": users, "item": items}))
  live = items > 0
  np.testing.assert_allclose(got[live], want[live], atol=1e-5)
  sq = np.asarray(model.module.apply(params, {"user": users}, items[:, None], method="ego_sq_norms"))
  np.testing.assert_allclose(sq, (p["node_embed"][users] ** 2).sum(-1) + (ego[items + u1] ** 2).sum(-1),
                             rtol=1e-5)  # L2 (reg) on the whole layer-0 vectors: the item's id + text


def test_logits_match_a_hand_computed_fused_score(data):
  """logit(u, i) = p_u · (q_i + Σ_k α_k[head] (t_i^k A_k B_k)[head chunk]), α = softmax_k(q_hᵀ W^fus_k,h s_i^k / √d_k);
  float64 numpy from the params, |Δ| ≤ 1e-5 (float32)."""
  k, d_text = 3, 12
  text = np.random.default_rng(0).normal(size=(data.n_items + 1, k, d_text)).astype(np.float32)
  text[0] = 0
  model = _build(data, text, text_rank=5)
  params = model.init(jax.random.PRNGKey(0))
  assert not np.asarray(params["params"]["text_b"]).any()  # B = 0: the text path starts silent
  params["params"]["text_b"] = jax.random.normal(jax.random.PRNGKey(1), params["params"]["text_b"].shape)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
  users, items = np.array([1, 5, 9, 0]), np.array([3, 0, 60, 7])
  item_vec = (p["item_embed"]["embedding"][items] + _fused(text[items], p)) * (items > 0)[:, None]
  user_vec = p["user_embed"]["embedding"][users] * (users > 0)[:, None]
  want = (user_vec * item_vec).sum(-1)
  batch = {"user": users, "item": items}
  got = np.asarray(model.logits(params, batch))
  live = items > 0  # padding item 0 gets the masked logit
  np.testing.assert_allclose(got[live], want[live], atol=1e-5)
  table = np.asarray(model.score_all(params, batch))
  np.testing.assert_allclose(table[np.arange(4)[live], items[live]], want[live], atol=1e-5)


def test_text_ranks_items_no_training_row_has_seen():
  """Two item groups (A = 1..20, B = 21..40) whose text says which group; users 1..20 like A, 21..40 like B, and
  training holds only items 1..15 and 21..35. Items 16..20 and 36..40 never get an id gradient as positives, so only
  the text path can place them: after training, every user must rank the unseen items of its own group above the
  other group's (cold-item AUC per user ≥ 0.9 on average; the untrained model sits near 0.5)."""
  rng = np.random.default_rng(0)
  n = 40
  group = np.where(np.arange(n + 1) <= 20, 1.0, -1.0)
  text = np.concatenate([group[:, None, None].repeat(2, 1), 0.1 * rng.normal(size=(n + 1, 2, 7))], -1)
  text[0] = 0
  users, items = [], []
  for u in range(1, n + 1):
    for i in (range(1, 16) if u <= 20 else range(21, 36)):
      users.append(u), items.append(i)
  arrays = {"user": np.array(users), "item": np.array(items), "label": np.ones(len(users), np.float32)}

  class Data:
    n_users = n_items = n
    splits = {"train": None}

  model = _build(Data, text.astype(np.float32), loss="softmax", n_negatives=-1)
  params = model.init(jax.random.PRNGKey(0))
  trainable, frozen = partition(params, [("params/.*", "train")])
  optimizer, _ = make_optimizer(stage_config(optimizer={"lr": 0.03, "weight_decay": 0.0}).optimizer, 200)
  step = jax.jit(make_train_step(lambda t, f, b, r: model.loss_fn(merge(t, f), b, r), optimizer))
  opt_state = optimizer.init(trainable)

  def cold_auc(params):
    scores = np.asarray(model.score_all(params, {"user": np.arange(1, n + 1)}))  # [U, I + 1]
    a, b = scores[:, 16:21], scores[:, 36:41]  # unseen A items, unseen B items
    own, other = np.where(np.arange(1, n + 1)[:, None] <= 20, a, b), np.where(np.arange(1, n + 1)[:, None] <= 20, b, a)
    return float(np.mean(own[:, :, None] > other[:, None, :]))

  before = cold_auc(params)
  for s in range(200):
    trainable, opt_state, _ = step(trainable, frozen, opt_state, arrays, jax.random.PRNGKey(s))
  after = cold_auc(merge(trainable, frozen))
  assert abs(before - 0.5) < 0.3 and after >= 0.9, (before, after)


def test_bad_text_encodings_and_heads_fail_in_one_line(data):
  with pytest.raises(JaxrecError, match=r"'mscf' needs the items' text encodings \[61, K, D\], got None"):
    _build(data, None)
  with pytest.raises(JaxrecError, match=r"got \(60, 2, 8\)"):
    _build(data, np.zeros((60, 2, 8), np.float32))


def test_text_cold_weights_each_items_text_by_its_training_rows(data):
  """config.model.text_cold = n0 scales item i's text encodings by sqrt(n0 / (n0 + n_i)), n_i its positive training
  rows counted in a plain loop (exact to float32 rounding, 1e-6); 0 leaves them as given; < 0 is a one-line error."""
  text = np.random.default_rng(0).normal(size=(data.n_items + 1, 2, 8)).astype(np.float32)
  train = data.splits["train"]
  counts = [0] * (data.n_items + 1)
  for item, label in zip(train.item.tolist(), train.label.tolist()):
    counts[item] += label > 0
  assert min(counts[1:]) < max(counts[1:])  # the weights below differ between items
  want = np.asarray([math.sqrt(20.0 / (20.0 + c)) for c in counts], np.float32)[:, None, None] * text
  got = _build(data, text, text_cold=20.0).consts["item_text"]
  np.testing.assert_allclose(got, want, rtol=1e-6)
  np.testing.assert_array_equal(_build(data, text, text_cold=0.0).consts["item_text"], text)
  with pytest.raises(JaxrecError, match=r"config.model.text_cold: expected 0 \(off\) or a positive row count, got -1.0"):
    _build(data, text, text_cold=-1.0)


class Catalogue:
  n_items = 7
  item_text = [""] + [f"Movie number {i} ({1990 + i})" for i in range(1, 8)]  # row 0: padding
  item_genres = ["", "Drama", "Comedy", "Drama|Comedy", "Action", "Horror", "Sci-Fi", "Animation"]


def test_item_features_equal_a_direct_decoder_pass(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXREC_CACHE", str(tmp_path))  # computed here, not read from a cache
  """`item_scale_features` (tiny random decoder, 3 layers, K = 3): per scale k, the mean of layer k's hidden states
  over the item-text tokens (numpy, from the decoder's own output), minus the catalogue mean, divided by its RMS;
  row 0 zeros. |Δ| ≤ 1e-4."""
  from jaxrec.models import multiscale as MS
  from jaxrec.multiscale import text as T
  from jaxrec.train import text_features

  cfg = text_features.text_config(llm="random", max_tokens=10, batch_size=3)
  cfg.random_llm.num_layers = 3
  got = text_features.item_scale_features(cfg, Catalogue, seed=0)
  assert got.shape == (8, 3, 32) and not got[0].any()

  model_cfg = text_features._multiscale_model_config(cfg)
  model, params, tok = MS.build(model_cfg, 7, seed=0)
  table = T.build_item_tokens(tok, Catalogue.item_text, Catalogue.item_genres, True, 10, model_cfg.user.prefix,
                              model_cfg.item.prefix)
  enc = T.encode_items(table, np.arange(1, 8))
  out = model.decoder.apply({"params": params["llm"]}, enc["input_ids"], attention_mask=enc["attention_mask"],
                            output_hidden_states=True, compute_logits=False)
  mask = (np.asarray(enc["segment"]) >= 0).astype(np.float64)  # the item's own tokens (not BOS / prefix)
  assert mask.sum(1).min() >= 1
  want = []
  for layer in (1, 2, 3):  # the tops of the three one-layer groups
    h = np.asarray(out["hidden_states"][layer], np.float64)
    pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)  # [7, D]
    pooled -= pooled.mean(0)
    want.append(pooled / np.sqrt((pooled ** 2).mean(-1, keepdims=True) + 1e-6))
  np.testing.assert_allclose(got[1:], np.stack(want, 1), atol=1e-4)


def test_item_features_are_cached_under_a_key_of_everything_they_depend_on(tmp_path, monkeypatch):
  """The pass runs once per (text section, catalogue, weights): a second call reads the cache file; other weights
  (seed) or another text section miss it; a cache entry of the wrong shape is recomputed."""
  from jaxrec.train import text_features

  monkeypatch.setenv("JAXREC_CACHE", str(tmp_path))
  cfg = text_features.text_config(llm="random", max_tokens=10, batch_size=4)
  cfg.random_llm.num_layers = 3
  first = text_features.item_scale_features(cfg, Catalogue, seed=0)
  files = list((tmp_path / "text_features").glob("*.npy"))
  assert len(files) == 1
  np.save(files[0], np.full_like(first, 7.0))  # what a second call returns comes from the file
  assert (text_features.item_scale_features(cfg, Catalogue, seed=0) == 7.0).all()
  other = text_features.item_scale_features(cfg, Catalogue, seed=1)
  assert np.abs(other - first).max() > 1e-3
  cfg.max_tokens = 8
  text_features.item_scale_features(cfg, Catalogue, seed=0)
  assert len(list((tmp_path / "text_features").glob("*.npy"))) == 3
  np.save(files[0], np.zeros((3, 3, 32), np.float32))  # truncated: not the catalogue's shape
  cfg.max_tokens = 10
  np.testing.assert_array_equal(text_features.item_scale_features(cfg, Catalogue, seed=0), first)


def _run(*args):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  proc = subprocess.run([sys.executable, str(REPO / "launch" / "train.py"), *map(str, args)], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


@pytest.mark.slow
def test_tiny_runs_on_ml1m_adapter_free_and_from_a_multiscale_run(shared_data, tmp_path):
  """The config trains end to end on the real split; with text.workdir the items are encoded by the multi-scale
  run's trained adapters, which changes the encodings (the adapters are no longer zero after its steps)."""
  from jaxrec.train import text_features, workdir as run_dir
  from jaxrec.train.cf_task import load

  from jaxrec.train import cf_task, loop

  root = f"--config.data.root={shared_data}"
  plain = tmp_path / "mscf"
  _run("--config=configs/ml1m_multiscale_cf.py:tiny,mf_first", f"--workdir={plain}", root, "--noprogress")
  metrics = json.loads((plain / "metrics.json").read_text())["splits"]["valid"]
  assert 0 <= metrics["ndcg@10"] <= 1 and (plain / "embeddings" / "item.npy").exists()
  # 'mf_first': the ids stage trains the id embeddings only (text_b stays exactly 0: MF), the text stage the rest
  config = run_dir.read_config(plain)
  _, _, init = cf_task.build_model(config)
  ids_only = config.copy_and_resolve_references()
  ids_only.stages = config.stages[:1]
  after_ids = loop.restore_params(ids_only, plain, init)["params"]
  after_text = loop.restore_params(config, plain, init)["params"]
  assert not np.any(np.asarray(after_ids["text_b"]))
  moved = np.asarray(after_ids["item_embed"]["embedding"]) - np.asarray(init["params"]["item_embed"]["embedding"])
  assert np.abs(moved).max() > 0
  assert np.abs(np.asarray(after_text["text_b"])).max() > 0
  # benchmarks/topk_frontier.py: β = 0 reproduces the run's own figures from its exported embeddings; β > 0 moves them
  from benchmarks import topk_frontier
  rows = topk_frontier.frontier(plain, [0.0, 2.0])
  assert rows[0]["ndcg@10"] == pytest.approx(metrics["ndcg@10"], abs=1e-6)
  assert rows[0]["coverage@10"] == pytest.approx(metrics["coverage@10"], abs=1e-6)
  assert rows[1]["coverage@10"] != rows[0]["coverage@10"]

  # 'graph': the text path on LightGCN trains end to end too, and its text maps move
  graph = tmp_path / "graph"
  _run("--config=configs/ml1m_multiscale_cf.py:tiny,graph", f"--workdir={graph}", root, "--noprogress")
  g_config = run_dir.read_config(graph)
  assert g_config.model.name == "mscf_gcn"
  _, _, g_init = cf_task.build_model(g_config)
  assert np.abs(np.asarray(loop.restore_params(g_config, graph, g_init)["params"]["text_b"])).max() > 0
  assert 0 <= json.loads((graph / "metrics.json").read_text())["splits"]["valid"]["ndcg@10"] <= 1

  ms = tmp_path / "ms"
  _run("--config=configs/ml1m_multiscale.py:tiny", f"--workdir={ms}", root, "--noprogress")

  # text.workdir: the items encoded with that run's trained adapters (what a run with it trains on)
  dataset = load(config)
  free = text_features.item_scale_features(config.model.text, dataset)
  config.model.text.workdir = str(ms)
  trained = text_features.item_scale_features(config.model.text, dataset)
  assert free.shape == trained.shape and np.abs(free - trained).max() > 1e-3


def test_frontier_penalty_counts_positive_training_rows():
  """log(1 + n_i) over positive rows only, padding item 0 at 0 (hand-computed)."""
  from benchmarks import topk_frontier
  pen = topk_frontier.penalty(np.array([1, 1, 2, 3, 0]), np.array([1.0, 1.0, 0.0, 1.0, 1.0]), 4)
  np.testing.assert_allclose(pen, [0.0, math.log(3.0), 0.0, math.log(2.0), 0.0], atol=1e-12)
