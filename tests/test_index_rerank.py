"""LLM re-ranking of Faiss candidates with the TALLRec scorer of jaxrec.models (a tiny random decoder over the
embedded SmolLM2 tokenizer): pair scoring, retrieve-then-rerank and the full-catalogue reference arm."""

import jax
import ml_collections
import numpy as np
import pytest

from jaxrec import cf
from jaxrec.cf import synthetic
from jaxrec.index import evaluation, faiss_index, pipeline, retrieval as R
from jaxrec.index.config import index_config
from jaxrec.index.llm_scorer import make_llm_scorer
from jaxrec.index.run import from_model


@pytest.fixture(scope="module")
def setup():
  data = synthetic.make_dataset(n_users=12, n_items=40, rows_per_user=20, max_history=10, seed=2)
  model = cf.build_model(ml_collections.ConfigDict(dict(name="mf", embed_dim=8, init_std=0.5)), data.n_users,
                         data.n_items)
  run = from_model(model, model.init(jax.random.PRNGKey(0)), data)
  index = faiss_index.build(run.item_table[1:], np.arange(1, data.n_items + 1), index_config("flat"))
  scorer = make_llm_scorer("random", data.item_text, data_name="synthetic")
  return data, run, index, scorer


def test_pair_scores_do_not_depend_on_the_batch(setup):
  data, _, _, scorer = setup
  history = np.array([[0, 0, 3, 5], [0, 7, 1, 2], [0, 0, 0, 0]])
  pairs = {"user": np.array([1, 2, 3]), "item": np.array([4, 9, 11]), "history": history}
  together = scorer(pairs)  # [3] P(Yes), different prompt lengths left-padded together
  alone = np.concatenate([scorer({k: v[i:i + 1] for k, v in pairs.items()}) for i in range(3)])
  assert together.shape == (3,) and ((together > 0) & (together < 1)).all()
  np.testing.assert_allclose(together, alone, atol=1e-5)
  prompt = scorer.tok.decode(scorer.encode(pairs)["input_ids"][0], skip_special_tokens=True)
  assert '"item 3", "item 5"' in prompt and '"item 4"' in prompt  # history titles and the candidate


def test_rerank_and_full_catalogue_arms(setup):
  data, run, index, scorer = setup
  cfg = index_config("flat", retrieve=dict(n=15, k=5, llm_batch_size=16))
  out = evaluation.evaluate_pipeline(run, index, data.splits["valid"], cfg, scorer, ks=(5,), full_catalogue=True)
  assert set(out) == {"cf", "candidates", "rerank", "llm_full"}
  for arm in ("cf", "rerank", "llm_full"):
    assert 0 <= out[arm]["recall@5"] <= 1 and 0 < out[arm]["coverage@5"] <= 1, out

  users, rows, _ = evaluation.query_rows(data.splits["valid"])
  ctx = evaluation.contexts(data.splits["valid"], rows)
  seen = run.seen_items("all")
  exclude = [seen.get(int(u), np.zeros(0, np.int64)) for u in users]
  cand = R.retrieve(index, run.query_vectors(users, ctx["history"]), 15, exclude)
  top = R.rerank(scorer, ctx, cand, 5, 16)
  for b in range(len(users)):  # the LLM's top-5 of the 15 candidates, by its own scores, none of them seen
    assert set(top.items[b]) <= set(cand.items[b]) and not np.isin(top.items[b], exclude[b]).any()
    pairs = {k: np.repeat(v[b:b + 1], 15, 0) for k, v in ctx.items()}
    pairs["item"] = cand.items[b]
    want = np.sort(scorer(pairs))[::-1][:5]
    np.testing.assert_allclose(top.scores[b], want, atol=1e-5)


def test_recommend_with_llm(setup):
  data, run, index, scorer = setup
  cfg = index_config("flat", retrieve=dict(n=10, k=4, llm_batch_size=8))
  top = pipeline.recommend(run, index, cfg, history_items=np.array([3, 5, 8]), scorer=scorer)
  assert top.items.shape == (1, 4) and (top.items > 0).all() and not np.isin(top.items, [3, 5, 8]).any()
  assert ((top.scores > 0) & (top.scores < 1)).all() and (np.diff(top.scores[0]) <= 0).all()
