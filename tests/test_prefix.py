"""Shared-prefix scoring (issue #13): a prefix's keys / values computed once and reused by every suffix give the
scores of each prompt alone. Tolerance 1e-5 in float32 (the measured differences are ~1e-7: the same arithmetic in
another order)."""

import jax
import numpy as np
import pytest

from jaxrec.llm.model import Decoder
from jaxrec.models import prefix

from llm_fixtures import tiny_decoder  # noqa: E402

CFG, _PARAMS, _ADAPTERS = tiny_decoder()


@pytest.fixture(scope="module")
def tiny():
  return {"params": _PARAMS, "lora": _ADAPTERS}


@pytest.mark.parametrize("cut", [1, 6, 10])
def test_decoder_continues_a_left_padded_prefix_exactly(tiny, cut):
  rng = np.random.RandomState(0)
  ids = rng.randint(3, 101, (4, 14))
  mask = np.ones_like(ids)
  mask[1, :3] = mask[2, :5] = 0  # left padding inside the prefix (cut ≥ 6) or across the cut (cut = 1)
  dec = Decoder(CFG)
  whole = dec.apply(tiny, ids, attention_mask=mask)["logits"]  # [B, T, V]
  pre = dec.apply(tiny, ids[:, :cut], attention_mask=mask[:, :cut], return_kv=True, compute_logits=False)
  assert pre["kv"]["k"].shape == (3, 4, cut, 2, 8)  # [L, B, S, KV, Dh]
  rest = dec.apply(tiny, ids[:, cut:], attention_mask=mask[:, cut:], past_kv=pre["kv"], past_mask=mask[:, :cut])
  real = mask[:, cut:] > 0
  np.testing.assert_allclose(np.asarray(rest["logits"])[real], np.asarray(whole)[:, cut:][real], atol=1e-5)


def test_padding_between_prefix_and_suffix_is_masked(tiny):
  """A suffix left-padded after its prefix (how shared batches are laid out) scores as the unpadded prompt."""
  rng = np.random.RandomState(1)
  prompt = rng.randint(3, 101, 12)
  dec = Decoder(CFG)
  want = dec.apply(tiny, prompt[None])["logits"][0, -1]
  pre = dec.apply(tiny, prompt[None, :7], return_kv=True, compute_logits=False)
  suffix = np.concatenate([np.zeros(4, int), prompt[7:]])[None]  # 4 pad columns, then the suffix
  smask = (np.arange(9) >= 4).astype(np.int32)[None]
  got = dec.apply(tiny, suffix, attention_mask=smask, past_kv=pre["kv"], past_mask=np.ones((1, 7), np.int32))
  np.testing.assert_allclose(got["logits"][0, -1], want, atol=1e-5)


def _enc(ids, item_pos=-1, user_pos=-1):
  return dict(ids=np.asarray(ids, np.int32), user_pos=np.asarray([user_pos], np.int32),
              item_pos=np.asarray([item_pos], np.int32))


def test_prefix_length_stops_at_the_first_difference_the_item_slot_and_the_last_token():
  assert prefix.prefix_length([_enc([1, 2, 3, 4, 5]), _enc([1, 2, 3, 9, 5, 6])]) == 3
  assert prefix.prefix_length([_enc([1, 2, 3, 4]), _enc([1, 2, 3, 4])]) == 3  # keeps each row's last token
  assert prefix.prefix_length([_enc([1, 2, 3, 7, 8], item_pos=3), _enc([1, 2, 3, 7, 8], item_pos=3)]) == 3
  assert prefix.prefix_length([_enc([1, 2, 3, 4, 5])]) == 4


def test_groups_are_user_and_whole_history():
  fields = dict(user=np.array([1, 1, 2, 1]), history=np.array([[0, 5], [0, 5], [0, 5], [5, 6]]))
  g = prefix.group_rows(fields)
  assert g[0] == g[1] and len({g[0], g[2], g[3]}) == 3


def test_plan_scores_every_row_once_in_power_of_two_groups():
  rng = np.random.RandomState(0)
  encodings, users = [], []
  for user in range(23):
    head = list(rng.randint(3, 50, rng.randint(3, 9)))
    for _ in range(rng.randint(1, 6)):
      encodings.append(_enc([1] + head + list(rng.randint(50, 99, rng.randint(1, 4)))))
      users.append(user)
  fields = dict(user=np.array(users), history=np.array(users)[:, None], item=np.arange(len(users)),
                history_label=np.ones((len(users), 1), np.int8))
  seen = []
  for pre, suf, real in prefix.batches(encodings, fields, batch_size=8, pad_id=0, pad_multiple=4):
    g = pre["input_ids"].shape[0]
    assert g & (g - 1) == 0 and suf["input_ids"].shape[0] == 8
    assert pre["input_ids"].shape[1] % 8 == 0 and suf["input_ids"].shape[1] % 4 == 0
    for k, r in enumerate(real):  # prefix + suffix tokens rebuild the row
      p = pre["input_ids"][suf["group"][k]][pre["attention_mask"][suf["group"][k]] > 0]
      s = suf["input_ids"][k][suf["attention_mask"][k] > 0]
      np.testing.assert_array_equal(np.concatenate([p, s]), encodings[r]["ids"])
    seen.extend(real.tolist())
  assert sorted(seen) == list(range(len(encodings)))
  assert prefix.saved_fraction(encodings, fields) > 0.2


def test_pack_puts_every_suffix_once_and_marks_its_last_token():
  rng = np.random.RandomState(3)
  head = [1] + list(rng.randint(3, 50, 9))
  encodings = [_enc(head + list(rng.randint(50, 99, rng.randint(1, 40)))) for _ in range(30)]
  pre, packed, where = prefix.pack(encodings, pad_id=0, pad_multiple=16, capacity=64)
  assert pre["input_ids"].shape == (1, 32) and pre["attention_mask"].sum() == 10
  r, c = packed["input_ids"].shape
  assert r % 2 == 0 and c == 64 and packed["ends"].shape[1] % 8 == 0
  for i, e in enumerate(encodings):
    row, k = where[i]
    cols = np.flatnonzero(packed["segment_ids"][row] == k + 1)
    np.testing.assert_array_equal(packed["input_ids"][row, cols], e["ids"][10:])  # contiguous, whole, in order
    assert packed["ends"][row, k] == cols[-1] and np.all(np.diff(cols) == 1)
  assert packed["attention_mask"].sum() == sum(len(e["ids"]) - 10 for e in encodings)  # no padding inside rows


def _pairs(k=24):
  rng = np.random.RandomState(0)
  history = np.zeros((k, 20), np.int64)
  history[:, -8:] = rng.randint(1, 199, 8)
  pairs = dict(user=np.full(k, 3), item=np.r_[5, 6, rng.randint(1, 199, k - 2)], history=history)
  two = {key: np.concatenate([v, v]) for key, v in pairs.items()}  # a second user with another history
  two["user"][k:] = 4
  two["history"][k:, -1] = 1
  return two


@pytest.mark.parametrize("spec,layers", [("random", 2), pytest.param("smollm2", 3, marks=pytest.mark.slow)])
def test_rerank_scorer_shared_equals_per_prompt(spec, layers):
  """Re-ranking candidates of two users (two items with one title among them, whose ID slots must not be shared):
  one user's candidates (the prefix once, suffixes packed), and both users in batches of 16 (`prefix.batches`):
  shared-prefix P(Yes) = per-prompt P(Yes)."""
  from jaxrec.index.llm_scorer import make_llm_scorer

  titles = ["<pad>"] + [f"Movie number {i} ({1990 + i % 20})" for i in range(1, 200)]
  titles[6] = titles[5]
  scorer = make_llm_scorer(spec, titles, keep_layers=layers)
  pairs = _pairs()
  scorer.params = {**scorer.params, "lora": jax.tree.map(lambda x: x + 0.02, scorer.params["lora"])}
  first = {k: v[:24] for k, v in pairs.items()}
  np.testing.assert_allclose(scorer(first, shared=True), scorer(first, shared=False), atol=1e-5)
  np.testing.assert_allclose(scorer(pairs, batch_size=16, shared=True), scorer(pairs, batch_size=16, shared=False),
                             atol=1e-5)
