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
