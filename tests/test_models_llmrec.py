"""TALLRec / CoLLM model: slot replacement, both heads against full-vocabulary logits, gradients per stage, zero-LoRA
TALLRec = base decoder, user fallbacks, CF sources and config → model. Tiny random decoder, tiny trained BPE."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxrec import cf
from jaxrec.data import prompts
from jaxrec.llm import backbone
from jaxrec.errors import JaxrecError
from jaxrec.models import builder, cf_source, config as mconfig, fece, llmrec
from jaxrec.train.config import stage_config
from jaxrec.train.optim import make_optimizer
from jaxrec.train.partition import partition, rules_from_stage
from jaxrec.tree import flatten, merge
from jaxrec.train.steps import make_train_step

TEMPLATE = ("#Question: A user liked <ItemTitleList>. The user's feature is <UserID>. Will the user enjoy "
            "<TargetItemTitle> with the feature <TargetItemID>? Answer with \"Yes\" or \"No\". \\n#Answer:")
TEXTS = [  # rendered prompts (titles filled in, ID slots kept)
    "#Question: A user liked \"Heat\", \"Alien\". The user's feature is <UserID>. Will the user enjoy \"Fargo\" "
    "with the feature <TargetItemID>? Answer with \"Yes\" or \"No\". \\n#Answer:",
    "#Question: A user liked unkow. The user's feature is <UserID>. Will the user enjoy \"Heat\" with the feature "
    "<TargetItemID>? Answer with \"Yes\" or \"No\". \\n#Answer:",
    "#Question: A user liked \"Fargo\". Will the user enjoy \"Alien\"? Answer with \"Yes\" or \"No\". \\n#Answer:",
]
N_USERS, N_ITEMS, D_CF, N_SLOT = 5, 6, 8, 2


@pytest.fixture(scope="module")
def tok():
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
  from transformers import PreTrainedTokenizerFast

  t = Tokenizer(models.BPE())
  t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  t.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>", "<s>"],
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
  t.train_from_iterator(TEXTS * 20 + ["Answer: Yes Answer: No\nYes\nNo"] * 50, trainer)
  return PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                 padding_side="left")


@pytest.fixture(scope="module")
def llm(tok):
  shape = mconfig.model_config().random_llm
  return backbone.random_llm(shape, tok, seed=0)


@pytest.fixture(scope="module")
def collm(tok, llm):
  """CoLLM (MF tables, learned fallback) with random LoRA B, so every adapter leaf matters."""
  model, params = _model(tok, llm, fallback="learned")
  return model, _random_lora(params)


def _cf_tables(seed=0):
  r = np.random.RandomState(seed)
  item = r.normal(size=(N_ITEMS + 1, D_CF)).astype(np.float32)
  user = r.normal(size=(N_USERS + 1, D_CF)).astype(np.float32)
  item[0] = user[0] = 0  # padding rows, as the CF export writes them
  return {"item": jnp.asarray(item), "user": jnp.asarray(user)}


def _batch(tok, n=N_SLOT):
  enc = prompts.pad_left(prompts.tokenize(TEXTS, tok, proj_token_num=n), prompts.pad_token_id(tok), 8)
  batch = {k: jnp.asarray(v) for k, v in enc.items()}
  batch.update(user=jnp.asarray([3, 0, 2]), item=jnp.asarray([4, 1, 5]), label=jnp.asarray([1.0, 0.0, 1.0]),
               history=jnp.asarray([[0, 1, 2], [0, 3, 5], [0, 0, 4]]),
               history_label=jnp.asarray([[-1, 1, 1], [-1, 1, 0], [-1, -1, 1]]))
  return batch


def _model(tok, llm, head="collm", cf_name="mf", fallback="history", lora_rank=4, seed=0, **cf_kw):
  cfg = mconfig.model_config(head=head, proj_token_num=N_SLOT, lora={"rank": lora_rank, "alpha": 8.0, "dropout": 0.0},
                             cf=dict(name=cf_name, user_fallback=fallback, **cf_kw))
  params = _cf_tables() if cf_name != "none" else None
  return builder.build(cfg, tokenizer=tok, template=TEMPLATE, llm=llm, cf_params=params, seed=seed)


def _random_lora(params, seed=3):
  r = np.random.RandomState(seed)
  return dict(params, lora=jax.tree.map(lambda x: jnp.asarray(0.2 * r.normal(size=x.shape), jnp.float32),
                                        params["lora"]))


def test_replace_slots_writes_exactly_the_slots():
  r = np.random.RandomState(0)
  embeds, vectors = r.normal(size=(3, 7, 4)).astype(np.float32), r.normal(size=(3, 2, 4)).astype(np.float32)
  pos = np.array([[2, 3], [-1, -1], [6, -1]], np.int32)
  out = np.asarray(fece.replace_slots(jnp.asarray(embeds), jnp.asarray(vectors), jnp.asarray(pos)))
  want = embeds.copy()
  for b in range(3):
    for k in range(2):
      if pos[b, k] >= 0:
        want[b, pos[b, k]] = vectors[b, k]
  np.testing.assert_array_equal(out, want)


def test_model_embeds_differ_from_token_embeds_only_at_slots(tok, collm):
  model, params = collm
  batch = _batch(tok)
  plain = np.asarray(model.decoder.apply({"params": params["llm"]}, batch["input_ids"], method="embed"))
  got, (user, item) = jax.tree.map(np.asarray, jax.jit(
      lambda p, b: (model.inputs_embeds(p, b), model.slot_vectors(p, b)))(params, batch))  # [B, T, D], [B, n, D]
  slots = np.zeros(got.shape[:2], bool)
  for b in range(3):
    for vecs, pos in ((user, batch["user_slot_pos"]), (item, batch["item_slot_pos"])):
      for k, p in enumerate(np.asarray(pos[b])):
        if p >= 0:
          np.testing.assert_array_equal(got[b, p], vecs[b, k])
          slots[b, p] = True
  assert slots.sum() == 2 * 2 * N_SLOT  # rows 0 and 1 have both slots; row 2 (no slot markers) none
  ids = np.asarray(batch["input_ids"])
  assert (ids[slots] == prompts.placeholder_id(tok)).all()
  np.testing.assert_array_equal(got[~slots], plain[~slots])


@pytest.mark.parametrize("head", ["collm", "tallrec"])
def test_heads_match_full_vocabulary_logits(tok, llm, collm, head):
  model, params = collm if head == "collm" else _model(tok, llm, head=head, fallback="learned")
  params = _random_lora(params)
  batch = _batch(tok)

  @jax.jit
  def run(params, batch):
    full = model.decoder.apply({"params": params["llm"], "lora": params["lora"]},  # every position and token
                               inputs_embeds=model.inputs_embeds(params, batch),
                               attention_mask=batch["attention_mask"])["logits"]
    # The loop's eval step calls score_fn(merge(trainable, frozen), batch); here everything is frozen.
    score = llmrec.make_score_fn(model)(merge({}, params), batch)
    return full, score, model.loss(params, batch, jax.random.PRNGKey(0))

  full, score, (loss, aux) = run(params, batch)
  full = np.asarray(full, np.float64)  # [B, T, V]
  yes, no = model.answer_ids
  last = full[:, -1]  # [B, V]
  if head == "collm":
    z = last[:, yes]
    want = 1.0 / (1.0 + np.exp(-z))
  else:
    e = np.exp(last[:, [yes, no]] - last[:, [yes, no]].max(-1, keepdims=True))
    want = e[:, 0] / e.sum(-1)
    z = last[:, yes] - last[:, no]
  np.testing.assert_allclose(np.asarray(score), want, rtol=1e-5, atol=1e-6)
  label = np.asarray(batch["label"])
  bce = np.mean(np.logaddexp(0, z) - label * z)
  np.testing.assert_allclose(float(loss), bce, rtol=1e-5)
  assert set(aux) == {"p_yes", "acc"}


def test_tallrec_with_zero_lora_is_the_base_decoder(tok, llm):
  model, params = _model(tok, llm, head="tallrec", cf_name="none")
  assert set(params) == {"llm", "lora"} and model.cf is None
  assert all(float(jnp.abs(x).max()) == 0 for p, x in flatten(params["lora"]).items() if p.endswith("/b"))
  batch = _batch(tok)
  base, got = jax.jit(lambda p, b: (  # the base decoder without any LoRA collection, and the model
      model.decoder.apply({"params": p["llm"]}, b["input_ids"], attention_mask=b["attention_mask"])["logits"],
      model.probabilities(p, b)))(params, batch)
  pair = np.asarray(base)[:, -1, list(model.answer_ids)]  # [B, 2]
  want = np.exp(pair[:, 0]) / np.exp(pair).sum(-1)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("trainable,expect", [("fece/.*", "fece"), ("lora/.*", "lora")])
def test_gradients_reach_only_the_stage_leaves(tok, collm, trainable, expect):
  model, params = collm  # LoRA B != 0, so A gets a gradient too
  batch = _batch(tok)
  train, frozen = partition(params, rules_from_stage([trainable]))
  assert set(train) == {expect} and expect not in frozen
  loss_fn = llmrec.make_loss_fn(model)
  grads = jax.jit(jax.grad(lambda t, f: loss_fn(t, f, batch, jax.random.PRNGKey(1))[0]))(train, frozen)
  flat = flatten(grads)
  assert set(flat) == set(flatten(train))  # gradients exist for the stage's leaves and only those
  # Every trainable leaf gets a gradient, the learned fallback included (row 1 has user 0).
  for path, g in flat.items():
    assert float(jnp.abs(g).max()) > 0, path
  if expect == "lora":  # one step of the loop's own (jitted, donating) train step takes this loss_fn
    optimizer, _ = make_optimizer(stage_config(trainable=[trainable]).optimizer, 10)
    before = jax.tree.map(np.asarray, train)
    new, _, metrics = make_train_step(loss_fn, optimizer)(
        jax.tree.map(jnp.copy, train), frozen, optimizer.init(train), batch, jax.random.PRNGKey(2))
    assert set(metrics) >= {"loss", "grad_norm", "p_yes", "acc"}
    assert all(not np.array_equal(a, np.asarray(b)) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(new)))


def test_user_without_id_uses_history_fallback(tok, llm):
  batch = _batch(tok)
  tables = _cf_tables()
  item_t, user_t = np.asarray(tables["item"]), np.asarray(tables["user"])
  src = cf_source.CFSource("tables", D_CF, "history")
  user, item = (np.asarray(v) for v in src.vectors(tables, {}, batch))
  np.testing.assert_array_equal(item, item_t[[4, 1, 5]])
  np.testing.assert_array_equal(user[0], user_t[3])
  np.testing.assert_array_equal(user[2], user_t[2])
  np.testing.assert_allclose(user[1], item_t[3], rtol=1e-6)  # user 0: liked history [3] (5 was disliked)
  zeros = np.asarray(cf_source.CFSource("tables", D_CF, "zeros").vectors(tables, {}, batch)[0])
  np.testing.assert_array_equal(zeros[1], 0)
  np.testing.assert_array_equal(zeros[0], user_t[3])
  learned = np.asarray(cf_source.CFSource("tables", D_CF, "learned").vectors(
      tables, {"user_fallback": jnp.full((D_CF,), 7.0)}, batch)[0])
  np.testing.assert_array_equal(learned[1], 7.0)
  # Cold users (absent from the CF training split) take the fallback too when cold_users='fallback'.
  known = dict(tables, user_known=jnp.asarray(cf_source.known_users(np.array([2, 2, 4]), N_USERS)))
  cold = np.asarray(src.vectors(known, {}, batch)[0])
  np.testing.assert_allclose(cold[0], item_t[[1, 2]].mean(0), rtol=1e-6)  # user 3 unknown → history mean
  np.testing.assert_array_equal(cold[2], user_t[2])
  # ... and the model feeds exactly that vector through the mapper into the user slot.
  model, params = _model(tok, llm)
  mapped = np.asarray(jax.jit(model.slot_vectors)(params, batch)[0])
  np.testing.assert_allclose(mapped[1], np.asarray(fece.apply_mapper(params["fece"], jnp.asarray(user[1:2]),
                                                                     N_SLOT))[0], rtol=1e-6)


def test_history_model_source_uses_its_encoder(tok, llm):
  sas = cf.build_model(ml_collections.ConfigDict(
      dict(name="sasrec", embed_dim=D_CF, num_layers=1, num_heads=1, max_len=3, dropout=0.0)), N_USERS, N_ITEMS)
  variables = jax.jit(sas.init)(jax.random.PRNGKey(0))
  assert cf_source.resolve_kind("sasrec", "auto") == "model" and cf_source.resolve_kind("mf", "auto") == "tables"
  src = cf_source.make_source(mconfig.model_config(cf={"name": "sasrec"}).cf, variables, sas)
  assert src.user_from_history and src.dim == D_CF
  batch = _batch(tok)
  (user, item), want_user, want_item = jax.jit(lambda v, b: (
      src.vectors(v, {}, b), sas.module.apply(v, {"history": b["history"]}, method="user_repr"),
      sas.module.apply(v, b["item"], method="item_repr")))(variables, batch)
  np.testing.assert_allclose(np.asarray(user), np.asarray(want_user), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(item), np.asarray(want_item), rtol=1e-6)


def test_answer_tokens_follow_the_prompt(tok):
  yes, no = llmrec.answer_token_ids(tok, TEMPLATE)
  assert tok.decode([yes]).startswith(" Y") and tok.decode([no]).startswith(" N")  # after "#Answer:", a space
  yes_nl, _ = llmrec.answer_token_ids(tok, "### Response:\n")
  assert tok.decode([yes_nl]).startswith("Y")  # after a newline, none
  with pytest.raises(JaxrecError, match="same token"):
    llmrec.answer_token_ids(tok, TEMPLATE, ("Yes", "Yes!"))


def test_build_from_config_with_cf_workdir(tok, tmp_path):
  (tmp_path / "embeddings").mkdir()
  tables = _cf_tables()
  for name in ("item", "user"):
    np.save(tmp_path / "embeddings" / f"{name}.npy", np.asarray(tables[name]))
  cfg = mconfig.model_config(llm="random", keep_layers=1, cf={"workdir": str(tmp_path), "cold_users": "fallback"})
  model, params = builder.build(cfg, tokenizer=tok, template=TEMPLATE, n_users=N_USERS, n_items=N_ITEMS,
                              train_users=np.array([1, 2]))
  assert model.decoder.cfg.num_layers == 1 and "layers_1" not in params["llm"]
  paths = set(flatten(params))
  assert {"fece/fc1/kernel", "fece/fc2/bias", "cf/item", "cf/user", "cf/user_known"} <= paths
  assert "lora/layers_0/self_attn/q_proj/a" in paths
  assert params["fece"]["fc1"]["kernel"].shape == (D_CF, 10 * D_CF)
  assert params["fece"]["fc2"]["kernel"].shape == (10 * D_CF, 32)
  with pytest.raises(JaxrecError, match="rows, expected"):
    builder.build(cfg, tokenizer=tok, template=TEMPLATE, n_users=N_USERS, n_items=N_ITEMS + 1,
                train_users=np.array([1]))


@pytest.mark.parametrize("override,field", [
    ({"head": "bce"}, "config.model.head"), ({"cf": {"name": "svd"}}, "config.model.cf.name"),
    ({"lora": {"dropout": 1.0}}, "config.model.lora.dropout"), ({"template": "nope"}, "config.model.template"),
    ({"cf": {"name": "none"}, "lora": {"rank": 0}}, "config.model.lora.rank"),
    ({"input_lm_weight": 0.5}, "config.model.input_lm_weight"),  # with the default MF source: slots aren't text
    ({"cf": {"name": "none"}, "input_lm_weight": -1.0}, "config.model.input_lm_weight")])
def test_config_errors_are_one_line(override, field):
  cfg = mconfig.model_config()
  for key, value in override.items():
    if isinstance(value, dict):
      cfg[key].update(value)
    else:
      cfg[key] = value
  with pytest.raises(JaxrecError, match=field.replace(".", r"\.")) as e:
    mconfig.validate(cfg)
  assert "\n" not in str(e.value)
  with pytest.raises(JaxrecError, match="unknown field"):
    mconfig.model_config(lora={"r": 2})
  data = type("D", (), {"template": "T", "get": lambda self, k, d=None: 3})()
  with pytest.raises(JaxrecError, match="proj_token_num"):
    mconfig.prompt_settings(mconfig.model_config(), data)


def test_input_lm_loss_is_transformers_causal_lm_loss(tmp_path):
  """λ · the prompt's LM loss (TALLRec's --train_on_inputs) against LlamaForCausalLM's own `loss` with labels = the
  ids (-100 on padding and on each row's first real token, which no real token predicts), left padding, f32:
  |Δ| ≤ 1e-5; the training loss is the answer's BCE plus λ times it."""
  import torch
  from jaxrec.llm import loading
  from jaxrec.llm.model import make_decoder
  from llm_fixtures import left_padded_batch, tiny_hf

  ref = tiny_hf("llama", tmp_path)
  cfg, params = loading.load_hf(str(tmp_path))
  model = llmrec.LLMRec(decoder=make_decoder(cfg), answer_ids=(5, 6), head="tallrec", input_lm_weight=0.5)
  ids, mask, pos = left_padded_batch()
  labels = np.where(mask > 0, ids, -100)
  labels[np.arange(len(ids)), np.argmax(mask, axis=1)] = -100  # each row's first real token
  with torch.no_grad():
    want = float(ref(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), position_ids=torch.tensor(pos),
                     labels=torch.tensor(labels)).loss)
  p = {"llm": params, "lora": {}}
  batch = {"input_ids": jnp.asarray(ids), "attention_mask": jnp.asarray(mask), "label": jnp.asarray([1.0, 0.0, 1.0])}
  got = float(model.input_lm_loss(p, batch, model._final(p, batch)))
  assert abs(got - want) <= 1e-5, (got, want)
  loss, aux = model.loss(p, batch, None)
  z = np.asarray(model.score_logits(p, batch))
  bce = np.mean(np.logaddexp(0, z) - np.asarray(batch["label"]) * z)
  np.testing.assert_allclose(float(aux["input_lm"]), want, atol=1e-5)
  np.testing.assert_allclose(float(loss), bce + 0.5 * want, rtol=1e-5)
