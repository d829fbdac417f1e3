"""The four CF models: planted-signal learning, the shared contract, losses and embedding export."""

import jax
import ml_collections
import numpy as np
import pytest

from jaxrec import cf, evaluate, metrics
from jaxrec.cf import base, synthetic
from jaxrec.cf.lightgcn import build_graph
from jaxrec.tree import merge
from jaxrec.train import ArrayBatcher, make_optimizer, make_train_step, partition, stage_config

MODELS = {
    "mf": dict(embed_dim=16),
    "lightgcn": dict(embed_dim=16, num_layers=2),
    "sasrec": dict(embed_dim=16, num_layers=1, num_heads=2, max_len=10, dropout=0.1),
    "din": dict(embed_dim=16, max_len=10, attn_hidden=[16], mlp_hidden=[32]),
}


@pytest.fixture(scope="module")
def data():
  return synthetic.make_dataset(n_users=150, n_items=60, rows_per_user=30, max_history=10, seed=0)


def _build(name, data, **kw):
  cfg = ml_collections.ConfigDict(dict(name=name, **{**MODELS[name], **kw}))
  return cf.build_model(cfg, data.n_users, data.n_items, data.splits["train"])


def _fit(model, data, steps=200, lr=0.01, batch_size=128, seed=0):
  params = model.init(jax.random.PRNGKey(seed))
  trainable, frozen = partition(params, [("params/.*", "train")])
  optimizer, _ = make_optimizer(stage_config(optimizer={"lr": lr, "weight_decay": 1e-4}).optimizer, steps)
  step = make_train_step(lambda t, f, b, r: model.loss_fn(merge(t, f), b, r), optimizer)
  opt_state = optimizer.init(trainable)
  batcher = ArrayBatcher(evaluate.split_arrays(data.splits["train"]), batch_size, seed)
  for s in range(steps):
    epoch, pos = divmod(s, batcher.steps_per_epoch)
    batch = next(batcher.batches(epoch, pos))
    trainable, opt_state, _ = step(trainable, frozen, opt_state, batch, jax.random.PRNGKey(s))
  return merge(trainable, frozen)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_contract_planted_signal_and_exports(name, data):
  model = _build(name, data)
  logits, score_all = jax.jit(model.logits), jax.jit(model.score_all)
  valid = data.splits["valid"]

  # Padding id 0 never scores, and the three ways of scoring agree (checked at init, before training).
  params = model.init(jax.random.PRNGKey(1))
  batch = {k: v[:4] for k, v in evaluate.split_arrays(valid).items()}
  batch["item"] = np.array([0, 3, 0, 5])
  out = np.asarray(logits(params, batch))
  assert out[0] == base.PAD_LOGIT and out[2] == base.PAD_LOGIT and np.all(out[[1, 3]] > base.PAD_LOGIT)
  full = np.asarray(score_all(params, batch))  # [4, n_items + 1]
  assert full.shape == (4, data.n_items + 1) and np.all(full[:, 0] == base.PAD_LOGIT)
  np.testing.assert_allclose(full[[1, 3], [3, 5]], out[[1, 3]], rtol=1e-4, atol=1e-5)
  multi = np.asarray(logits(params, batch, np.array([[3, 0, 7]] * 4)))  # [4, 3]
  np.testing.assert_allclose(multi[:, [0, 2]], full[:, [3, 7]], rtol=1e-4, atol=1e-5)
  assert np.all(multi[:, 1] == base.PAD_LOGIT)

  params = _fit(model, data)
  result = evaluate.evaluate_ctr(lambda b: logits(params, b), valid, batch_size=4)  # reuses the compiled shape
  # Id models can only rank warm rows (cold users embed to zeros); history models serve cold users as well.
  assert result["warm/auc"] > 0.7, result
  if model.uses_history:
    assert result["cold/auc"] > 0.6, result

  emb = model.export_embeddings(params, histories=valid.history[:7])
  d = MODELS[name]["embed_dim"]
  assert emb["item"].shape == (data.n_items + 1, d)
  np.testing.assert_array_equal(emb["item"][0], 0.0)
  if model.uses_history:
    assert emb["history"].shape == (7, d) and "user" not in emb
  else:
    assert emb["user"].shape == (data.n_users + 1, d)
    np.testing.assert_array_equal(emb["user"][0], 0.0)
    # For dot-product id models the exported vectors reproduce the logits.
    batch = {k: v[:5] for k, v in evaluate.split_arrays(valid).items()}
    np.testing.assert_allclose(np.einsum("bd,bd->b", emb["user"][batch["user"]], emb["item"][batch["item"]]),
                               np.asarray(logits(params, batch)), rtol=1e-4, atol=1e-5)


def test_history_models_ignore_padding_and_handle_empty_history(data):
  for name in ("sasrec", "din"):
    model = _build(name, data, dropout=0.0) if name == "sasrec" else _build(name, data)
    params = model.init(jax.random.PRNGKey(2))
    logits = jax.jit(model.logits)
    h = np.zeros((2, 10), np.int64)
    h[0, -2:] = [4, 9]
    h[1, -2:] = [4, 9]
    h[1, :3] = 0  # same real items, padding untouched → same score
    batch = {"user": np.zeros(3, np.int64), "item": np.array([5, 5, 5]),
             "history": np.stack([h[0], h[1], np.zeros(10, np.int64)])}
    out = np.asarray(logits(params, batch))
    assert np.isfinite(out).all()  # an all-padding history (row 2) still gives a finite score
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6)


def test_implicit_losses_learn_ranking(data):
  # Implicit feedback: positives only; BPR and sampled softmax should rank a user's held-out positives high.
  train = data.splits["train"]
  pos = train.label > 0.5
  implicit = synthetic.Dataset(splits={"train": synthetic.Split(**{f: getattr(train, f)[pos] for f in
                                                                   train.__dataclass_fields__})},
                               n_users=data.n_users, n_items=data.n_items, item_text=data.item_text)
  valid = data.splits["valid"]
  keep = (valid.label > 0.5) & valid.warm
  train_items = {}
  for u, i in zip(implicit.splits["train"].user, implicit.splits["train"].item):
    train_items.setdefault(int(u), []).append(int(i))
  for loss in ("bpr", "softmax"):
    model = _build("mf", implicit, loss=loss, n_negatives=4)
    params = _fit(model, implicit, steps=300, lr=0.05)
    # Trained on positives only, it still separates held-out likes from dislikes ...
    w = valid.warm
    auc = metrics.auc(valid.label[w], np.asarray(model.logits(params, {"user": valid.user[w], "item": valid.item[w]})))
    assert auc > 0.7, (loss, auc)
    users = np.unique(valid.user[keep])
    scores = np.asarray(model.score_all(params, {"user": users}))
    ranked = metrics.top_k_from_scores(scores, 10, [np.array(train_items.get(int(u), [])) for u in users])
    relevant = [np.setdiff1d(valid.item[keep & (valid.user == u)], train_items.get(int(u), [])) for u in users]
    ndcg = metrics.ndcg_at_k(ranked, relevant, 10)
    rng = np.random.default_rng(0)
    random_ndcg = metrics.ndcg_at_k(np.stack([rng.permutation(np.arange(1, data.n_items + 1))[:10] for _ in users]),
                                    relevant, 10)
    # ... and ranks unseen held-out likes above random in full-catalogue top-10 (half the catalogue is "liked", so
    # even a perfect model is only about twice random here).
    assert ndcg > 1.25 * random_ndcg, (loss, ndcg, random_ndcg)


def test_lightgcn_graph_is_symmetric_normalised():
  g = build_graph(users=[1, 1, 2, 2, 0], items=[1, 2, 1, 1, 3], labels=[1, 1, 1, 1, 1], n_users=2, n_items=3)
  # Unique positive pairs (1,1), (1,2), (2,1); user 0 dropped. deg(u1)=2, deg(u2)=1, deg(i1)=2, deg(i2)=1.
  assert len(g["edge_src"]) == 6
  edges = {(int(s), int(d)): float(w) for s, d, w in zip(g["edge_src"], g["edge_dst"], g["edge_weight"])}
  item = lambda i: 2 + 1 + i  # items start after the 3 user nodes 0..2
  assert edges[(1, item(1))] == pytest.approx(1 / 2) and edges[(item(1), 1)] == pytest.approx(1 / 2)
  assert edges[(1, item(2))] == pytest.approx(1 / np.sqrt(2)) and edges[(2, item(1))] == pytest.approx(1 / np.sqrt(2))


def test_unknown_model_or_loss_fails_in_one_line(data):
  from jaxrec.errors import JaxrecError
  with pytest.raises(JaxrecError, match="config.model.name: unknown CF model 'gru4rec'"):
    cf.build_model(ml_collections.ConfigDict(dict(name="gru4rec")), 3, 3)
  with pytest.raises(JaxrecError, match="config.model.loss"):
    cf.build_model(ml_collections.ConfigDict(dict(name="mf", loss="hinge")), 3, 3)


def _numpy_propagation(users, items, n_users, n_items, emb, layers):
  """LightGCN's smoothing by hand: a loop over the unique positive pairs, weights 1 / sqrt(deg(u) deg(i))."""
  pairs = sorted({(u, i) for u, i in zip(users, items) if u > 0 and i > 0})
  deg_u = {u: sum(1 for p in pairs if p[0] == u) for u, _ in pairs}
  deg_i = {i: sum(1 for p in pairs if p[1] == i) for _, i in pairs}
  x, out = emb.astype(np.float64), [emb.astype(np.float64)]
  for _ in range(layers):
    nxt = np.zeros_like(x)
    for u, i in pairs:
      w, node_i = 1 / np.sqrt(deg_u[u] * deg_i[i]), n_users + 1 + i
      nxt[u] += w * x[node_i]
      nxt[node_i] += w * x[u]
    x = nxt
    out.append(x)
  return np.mean(out, 0)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_lightgcn_propagation_equals_a_loop_over_edges(layout, monkeypatch):
  """Both graph layouts (dense user × item block, BCOO edge list) smooth exactly as the hand loop (1e-5)."""
  from jaxrec.cf import lightgcn
  if layout == "sparse":
    monkeypatch.setattr(lightgcn, "DENSE_LIMIT", 0)
  rng = np.random.default_rng(0)
  n_users, n_items = 7, 9
  users, items = rng.integers(0, n_users + 1, 40), rng.integers(0, n_items + 1, 40)
  split = type("S", (), dict(user=users, item=items, label=np.ones(40)))
  model = cf.build_model(ml_collections.ConfigDict(dict(name="lightgcn", embed_dim=4, num_layers=3)), n_users,
                         n_items, split)
  assert lightgcn.graph_layout(n_users, n_items) == layout and set(model.consts) == (
      {"adj"} if layout == "dense" else {"edge_index", "edge_weight"})
  variables = model.init(jax.random.PRNGKey(0))
  got = np.asarray(model.module.apply(variables, method="propagate"))
  want = _numpy_propagation(users, items, n_users, n_items, np.asarray(variables["params"]["node_embed"]), 3)
  want[0], want[n_users + 1] = 0, 0  # padding nodes
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_closed_form_models_against_direct_computations():
  """EASE against per-item ridge regressions without the item itself (its definition), ItemKNN against pairwise
  cosines kept to the k nearest, most popular against counts (1e-4 relative)."""
  from jaxrec.cf import closed_form as C
  rng = np.random.default_rng(1)
  n_users, n_items = 30, 12
  users, items = rng.integers(1, n_users + 1, 150), rng.integers(1, n_items + 1, 150)
  x = C.interactions(users, items, np.ones(150), n_users, n_items)
  assert x.sum() == len({(u, i) for u, i in zip(users, items)})
  lam = 5.0
  w = C.item_item(x, "ease", l2=lam)
  xi = x[:, 1:].astype(np.float64)
  for j in range(n_items):
    others = [k for k in range(n_items) if k != j]
    a = xi[:, others]
    b = np.linalg.solve(a.T @ a + lam * np.eye(len(others)), a.T @ xi[:, j])
    np.testing.assert_allclose(w[1:, 1:][others, j], b, rtol=1e-4, atol=1e-6)
    assert w[1 + j, 1 + j] == 0
  k = 3
  w = C.item_item(x, "itemknn", neighbours=k)
  for j in range(1, n_items + 1):
    cos = np.array([xi[:, i - 1] @ xi[:, j - 1] / (np.linalg.norm(xi[:, i - 1]) * np.linalg.norm(xi[:, j - 1]))
                    if i != j else 0.0 for i in range(1, n_items + 1)])
    keep = cos >= np.sort(cos)[-k]
    np.testing.assert_allclose(w[1:, j], np.where(keep, cos, 0.0), rtol=1e-4, atol=1e-6)
  w = C.item_item(x, "pop")
  np.testing.assert_allclose(w[5, 1:], xi.sum(0) / xi.sum(0).max(), rtol=1e-6)


def test_closed_form_config_trains_nothing_and_evaluates(tmp_path):
  """A closed-form model has no stages: launch/train.py's life cycle goes straight to evaluation and export."""
  import pathlib

  from jaxrec.config_util import sibling_config
  from jaxrec.errors import JaxrecError
  from jaxrec.train import task
  configs = pathlib.Path(__file__).resolve().parents[1] / "configs"
  config = sibling_config(str(configs / "x.py"), "baselines/ease.py", "synthetic,tiny,topk")
  results = task.train(config, tmp_path / "ease", progress=False)
  assert results["valid"]["ndcg@10"] > 0 and not (tmp_path / "ease" / "checkpoints").exists()
  assert np.load(tmp_path / "ease" / "embeddings" / "item.npy").shape == (41, 41)
  again = task.evaluate(tmp_path / "ease", "valid", progress=False)["valid"]
  assert again["ndcg@10"] == pytest.approx(results["valid"]["ndcg@10"], abs=1e-9)
  config.stages = [stage_config(name="x")]
  with pytest.raises(JaxrecError, match="config.stages: ease is fitted in closed form; expected no stages, got 1"):
    task.train(config, tmp_path / "bad", progress=False)


@pytest.mark.parametrize("name", ["mf", "lightgcn"])
def test_batch_l2_reg_adds_half_the_mean_squared_norms(name, data):
  """`model.reg`: loss = BPR + reg / 2 · mean over rows of (‖e_u‖² + Σ_c ‖e_c‖²) on the layer-0 embeddings of the
  row's user, positive and negatives (drawn with the same key), computed here by hand from the parameter table."""
  from jaxrec.errors import JaxrecError

  plain = _build(name, data, loss="bpr", n_negatives=3)
  reg = _build(name, data, loss="bpr", n_negatives=3, reg=0.01)
  params = plain.init(jax.random.PRNGKey(0))
  batch = {k: v[:32] for k, v in evaluate.split_arrays(data.splits["train"]).items()}
  batch["label"] = np.ones(32, np.float32)
  rng = jax.random.PRNGKey(3)
  base_loss, _ = plain.loss_fn(params, batch, rng)
  loss, aux = reg.loss_fn(params, batch, rng)
  neg = np.asarray(jax.random.randint(jax.random.split(rng)[1], (32, 3), 1, data.n_items + 1))
  items = np.concatenate([batch["item"][:, None], neg], 1)  # [B, 4]
  p = params["params"]
  if name == "mf":
    users, table = np.asarray(p["user_embed"]["embedding"])[batch["user"]], np.asarray(p["item_embed"]["embedding"])
    vecs = table[items] * (items != 0)[..., None]
  else:
    nodes = np.asarray(p["node_embed"])
    users, vecs = nodes[batch["user"]], nodes[items + data.n_users + 1]
  want = 0.5 * np.mean((users ** 2).sum(-1) + (vecs ** 2).sum((-2, -1)))
  assert float(aux["l2"]) == pytest.approx(want, rel=1e-5)
  assert float(loss) == pytest.approx(float(base_loss) + 0.01 * want, rel=1e-5)
  with pytest.raises(JaxrecError, match="config.model.reg: 0.01 needs loss 'bpr' or 'softmax'"):
    _build(name, data, reg=0.01)  # BCE (CTR rows): the optimiser's weight decay instead


@pytest.mark.parametrize("name", ["mf", "lightgcn"])
def test_full_catalogue_softmax_matches_a_hand_computed_cross_entropy(name, data):
  """n_negatives = -1: loss = mean over rows of -log softmax over every item (padding 0 excluded) at the positive,
  plus reg / 2 · mean (‖e_u‖² + ‖e_pos‖²); here by hand in float64 from the model's own full-catalogue scores."""
  from jaxrec.errors import JaxrecError

  model = _build(name, data, loss="softmax", n_negatives=-1, reg=0.01)
  params = model.init(jax.random.PRNGKey(0))
  batch = {k: v[:32] for k, v in evaluate.split_arrays(data.splits["train"]).items()}
  batch["label"] = np.ones(32, np.float32)
  loss, aux = model.loss_fn(params, batch, jax.random.PRNGKey(3))
  scores = np.asarray(model.score_all(params, batch), np.float64)[:, 1:]  # [B, I]
  log_z = np.log(np.exp(scores - scores.max(1, keepdims=True)).sum(1)) + scores.max(1)
  ce = np.mean(log_z - scores[np.arange(32), batch["item"] - 1])
  p = params["params"]
  if name == "mf":
    users = np.asarray(p["user_embed"]["embedding"])[batch["user"]]
    pos = np.asarray(p["item_embed"]["embedding"])[batch["item"]]
  else:
    nodes = np.asarray(p["node_embed"])
    users, pos = nodes[batch["user"]], nodes[batch["item"] + data.n_users + 1]
  l2 = 0.5 * np.mean((users ** 2).sum(-1) + (pos ** 2).sum(-1))
  assert float(aux["l2"]) == pytest.approx(l2, rel=1e-5)
  assert float(loss) == pytest.approx(ce + 0.01 * l2, rel=1e-5)
  with pytest.raises(JaxrecError, match="config.model.n_negatives: -1 .* needs loss 'softmax'"):
    _build(name, data, loss="bpr", n_negatives=-1)
