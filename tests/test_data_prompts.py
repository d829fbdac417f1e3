"""Prompt rendering, tokenization with ID slots, length bucketing and grain pipeline determinism."""

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from jaxrec import data as jdata
from jaxrec.data import pipeline, prompts, schema

TITLES = ["", "Toy Story (1995)", "Heat (1995)", "Casino (1995)", "Sabrina (1995)", "GoldenEye (1995)",
          "Jumanji (1995)", "Balto (1995)", "Nixon (1995)"]


@pytest.fixture(scope="module")
def tok():
  """A tiny real byte-level BPE tokenizer with the Hugging Face fast-tokenizer interface."""
  bpe = Tokenizer(models.BPE(unk_token="<unk>"))
  bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  bpe.decoder = decoders.ByteLevel()
  corpus = [prompts.TEMPLATES[k] for k in prompts.TEMPLATES] + TITLES * 5
  bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "<pad>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  return PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", pad_token="<pad>")


def _dataset(n=40, seed=0):
  rng = np.random.default_rng(seed)
  hist = [list(rng.choice(np.arange(1, 9), int(rng.integers(0, 8)), replace=False)) for _ in range(n)]
  split = schema.make_split(rng.integers(1, 5, n), rng.integers(1, 9, n), rng.integers(0, 2, n), np.arange(n),
                            hist, 10)
  return schema.Dataset("toy", {"train": split}, 4, 8, TITLES, [""] * 9)


def test_render_known_row():
  split = schema.make_split([3], [2], [1], [5], [[1, 4, 5]], 10)
  text = prompts.render(prompts.TEMPLATES["collm_movie"], split, TITLES, [0], prompt_history=2)[0]
  assert text.startswith('#Question: A user has given high ratings to the following movies: "Sabrina (1995)", '
                         '"GoldenEye (1995)". Additionally')
  assert 'enjoy the movie titled "Heat (1995)" with the feature <TargetItemID>?' in text
  books = schema.make_split([0], [2], [1], [-1], [[1, 4, 5]], 10, history_labels=[[1, 0, 1]])
  book_text = prompts.render(prompts.TALLREC_BOOK_INPUT, books, TITLES, [0], quote_titles=False,
                             empty_history_text="")[0]
  assert book_text == ("User Preference: Toy Story (1995), GoldenEye (1995)\nUser Unpreference: Sabrina (1995)\n"
                       "Whether the user will like the target book \"Heat (1995)\"?")


@pytest.mark.parametrize("proj_token_num", [1, 3])
def test_slot_positions_point_at_placeholders(tok, proj_token_num):
  ds = _dataset()
  rows = [0, 1, 2, 3]
  batch = prompts.encode(prompts.TEMPLATES["collm_movie"], ds["train"], ds.item_text, rows, tok,
                         proj_token_num=proj_token_num, pad_multiple=16)
  ids, mask = batch["input_ids"], batch["attention_mask"]
  b, t = ids.shape
  assert t % 16 == 0 and ids.dtype == np.int32 and mask.dtype == np.int32
  assert batch["user_slot_pos"].shape == (b, proj_token_num) == batch["item_slot_pos"].shape
  texts = prompts.render(prompts.TEMPLATES["collm_movie"], ds["train"], ds.item_text, rows)
  for r in range(b):
    start = t - int(mask[r].sum())
    assert (mask[r, :start] == 0).all() and (ids[r, :start] == tok.pad_token_id).all()  # left padding
    assert ids[r, start] == tok.bos_token_id
    up, ip = batch["user_slot_pos"][r], batch["item_slot_pos"][r]
    assert (ids[r, up] == tok.unk_token_id).all() and (ids[r, ip] == tok.unk_token_id).all()
    assert (np.diff(up) == 1).all() and up[0] < ip[0]
    before, between_after = texts[r].split("<UserID>")
    between, after = between_after.split("<TargetItemID>")
    assert tok.decode(ids[r, start + 1:up[0]]) == before
    assert tok.decode(ids[r, up[-1] + 1:ip[0]]) == between
    assert tok.decode(ids[r, ip[-1] + 1:]) == after
  plain = prompts.encode(prompts.TEMPLATES["tallrec_movie"], ds["train"], ds.item_text, rows, tok)
  assert (plain["user_slot_pos"] == -1).all() and (plain["item_slot_pos"] == -1).all()


def test_placeholder_falls_back_to_pad():
  class NoUnk:
    unk_token_id, pad_token_id, bos_token_id = None, 7, None

    def __call__(self, texts, add_special_tokens=False):
      return {"input_ids": [[ord(c) % 5 + 10 for c in s] for s in texts]}

  enc = prompts.tokenize(["ab<UserID>c"], NoUnk())[0]
  assert enc["ids"].tolist() == [12, 13, 7, 14] and enc["user_pos"].tolist() == [2]
  assert enc["item_pos"].tolist() == [-1]


def test_rec_batches_deterministic_and_sharded():
  split = _dataset(n=37)["train"]
  first = [b["row"].tolist() for b in pipeline.rec_batches(split, 8, seed=3, process_index=0, process_count=1)]
  again = [b["row"].tolist() for b in pipeline.rec_batches(split, 8, seed=3, process_index=0, process_count=1)]
  other = [b["row"].tolist() for b in pipeline.rec_batches(split, 8, seed=4, process_index=0, process_count=1)]
  assert first == again and first != other
  assert sorted(sum(first, [])) == list(range(37))
  epoch1 = [b["row"].tolist() for b in pipeline.rec_batches(split, 8, seed=3, epoch=1, process_count=1,
                                                           process_index=0)]
  assert epoch1 != first
  shards = [[b["row"].tolist() for b in pipeline.rec_batches(split, 8, seed=3, drop_remainder=True,
                                                             process_index=p, process_count=2)] for p in (0, 1)]
  assert [a + b for a, b in zip(*shards)] == first[:4]  # each process holds its half of every global batch
  batch = pipeline.rec_batches(split, 8, seed=3, process_count=1, process_index=0)[0]
  assert batch["history"].shape == (8, 10) and batch["label"].dtype == np.float32


def test_prompt_batches_bucketing_and_determinism(tok):
  ds = _dataset(n=64, seed=1)
  cfg = jdata.get_data_config("ml100k")
  cfg.pad_multiple = 4
  table = pipeline.PromptTable(ds, "train", cfg, tok)
  kw = dict(process_index=0, process_count=1, table=table)
  bucketed = list(pipeline.prompt_batches(ds, "train", cfg, tok, 8, seed=0, **kw))
  plain = list(pipeline.prompt_batches(ds, "train", cfg, tok, 8, seed=0, bucket=False, **kw))
  again = list(pipeline.prompt_batches(ds, "train", cfg, tok, 8, seed=0, **kw))
  assert all(np.array_equal(a["input_ids"], b["input_ids"]) for a, b in zip(bucketed, again))
  assert sorted(np.concatenate([b["row"] for b in bucketed]).tolist()) == list(range(64))
  cells = lambda bs: sum(b["input_ids"].size for b in bs)  # noqa: E731
  assert cells(bucketed) < cells(plain)
  for b in bucketed:
    assert (b["attention_mask"].sum(1) == table.lengths[b["row"]]).all()
    assert b["input_ids"].shape[1] % 4 == 0 and b["input_ids"].shape[1] - b["attention_mask"].sum(1).max() < 4


def test_prompt_batches_land_on_the_mesh_data_axis(tok):
  import jax

  from jaxrec import sharding

  ds = _dataset(n=16)
  cfg = jdata.get_data_config("ml1m_collm")
  mesh = sharding.make_mesh(data=2, model=1)
  runs = []
  for _ in range(2):
    batches = pipeline.prompt_batches(ds, "train", cfg, tok, batch_size=4, seed=3)
    runs.append([sharding.shard_batch(b, mesh) for b in batches])
  first = runs[0][0]
  assert first["input_ids"].sharding.spec == jax.sharding.PartitionSpec("data", None)
  assert [s.data.shape[0] for s in first["input_ids"].addressable_shards] == [2, 2]  # two rows per device
  assert first["user_slot_pos"].sharding.spec == jax.sharding.PartitionSpec("data", None)
  for a, b in zip(*runs):  # same seed → same global batches, after placement too
    np.testing.assert_array_equal(np.asarray(a["input_ids"]), np.asarray(b["input_ids"]))
