"""TALLRec and CoLLM-FaissRet as one model: a (LoRA-adapted) decoder scoring P("Yes") for a prompt.

TALLRec: text-only prompt → LoRA LLM → P(Yes). CoLLM: the same, plus a frozen CF model's user / item vectors, mapped
by FECE (`jaxrec.models.fece`) into the LLM's embedding space, overwrite the `<UserID>` / `<TargetItemID>`
placeholder embeddings. Parameters are one pytree

  {'llm': backbone (frozen), 'lora': adapters, 'fece': mapper (+ 'user_fallback' when learned), 'cf': CF (frozen)}

('fece' / 'cf' only with a CF model), so a training stage selects what trains by regex over paths such as
'lora/.*' or 'fece/.*'. Everything below is a pure function of (params, batch); `LLMRec` only holds static code.

Both heads read two logits at the last prompt position (prompts are left-padded, so that is column T - 1): the
decoder's head is applied, in float32, to that one hidden state and the two answer rows only, never the vocabulary:
  'collm'    z = logit_Yes,             P = sigmoid(z), loss = BCE(z, label)       (CoLLM's minigpt4rec_v2)
  'tallrec'  z = logit_Yes - logit_No,  P = softmax(Yes, No)[Yes] = sigmoid(z)    (TALLRec's evaluate.py), loss =
             BCE(z, label): the cross-entropy of the LM restricted to the two answers.

With `input_lm_weight` λ > 0 (TALLRec's `--train_on_inputs`, text-only prompts) the training loss adds λ times the
mean next-token cross-entropy of the prompt's own tokens over the whole vocabulary (padding excluded).

Batches (from `jaxrec.data.pipeline.PromptTable.collate`): input_ids / attention_mask [B, T], user_slot_pos /
item_slot_pos [B, n] (-1 = no slot), user / item / label [B], history [B, H], history_label [B, H], optional weight.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxrec.errors import JaxrecError
from jaxrec.llm import lora
from jaxrec.llm.model import Decoder
from jaxrec.models.cf_source import CFSource
from jaxrec.models.fece import apply_mapper, init_mapper, replace_slots
from jaxrec.tree import merge

Array = jax.Array
_MARKER = re.compile(r"<(ItemTitleList|DislikedItemTitleList|TargetItemTitle|UserID|TargetItemID)>")


def answer_token_ids(tok: Any, template: str, answers=("Yes", "No")) -> tuple[int, int]:
  """The token id that starts each answer where the model would write it: right after the prompt.

  The answer is appended to the template's fixed tail (the text after its last marker) with a space unless the tail
  ends in whitespace, and the first token past the tail's own tokens is taken. So a CoLLM prompt ending in
  "#Answer:" scores " Yes" (as CoLLM's Llama tokenizer did with "▁Yes"), and an Alpaca prompt ending in
  "### Response:\\n" scores "Yes" (TALLRec's ids 8241 / 3782 are those of "Yes" / "No" after a newline).
  """
  tail = _MARKER.split(template)[-1]
  sep = "" if tail[-1:].isspace() else " "
  base = list(tok(tail, add_special_tokens=False)["input_ids"]) if tail else []
  ids = []
  for answer in answers:
    full = list(tok(tail + sep + answer, add_special_tokens=False)["input_ids"])
    if full[:len(base)] != base or len(full) == len(base):
      raise JaxrecError(f"answer {answer!r} merges with the prompt's last token {tail[-8:]!r} when tokenized; "
                        f"end the template with a space or newline")
    ids.append(int(full[len(base)]))
  if ids[0] == ids[1]:
    raise JaxrecError(f"answers {list(answers)} start with the same token {ids[0]}; choose other config.model.answers")
  return ids[0], ids[1]


@dataclasses.dataclass(frozen=True, eq=False)
class LLMRec:
  """Static pieces of the model; params live in the pytree described in the module docstring."""

  decoder: Decoder
  answer_ids: tuple[int, int]  # (yes, no) token ids
  head: str = "collm"
  proj_token_num: int = 1
  cf: CFSource | None = None  # None: TALLRec (no mapper, no CF)
  fece_hidden_factor: int = 10
  input_lm_weight: float = 0.0  # λ of the prompt-token LM loss (training only)

  def __post_init__(self):
    if self.head not in ("collm", "tallrec"):
      raise JaxrecError(f"config.model.head: expected 'collm' or 'tallrec', got {self.head!r}")

  def init(self, rng: Array, llm_params, lora_cfg: lora.LoraConfig | None, cf_params=None) -> dict[str, Any]:
    """The full params pytree from a backbone, fresh adapters (B = 0: the model starts as the base LLM) and, with
    a CF source, a fresh mapper and the CF params (kept as they are)."""
    k_lora, k_fece = jax.random.split(rng)
    adapters = lora.init(llm_params, lora_cfg, k_lora) if lora_cfg is not None and lora_cfg.rank > 0 else {}
    params = {"llm": llm_params, "lora": adapters}
    if self.cf is not None:
      if cf_params is None:
        raise JaxrecError("a CoLLM model needs the CF model's params (config.model.cf.workdir)")
      fece = init_mapper(k_fece, self.cf.dim, self.decoder.cfg.hidden_size, self.proj_token_num,
                         self.fece_hidden_factor)
      if self.cf.user_fallback == "learned":
        fece["user_fallback"] = jnp.zeros((self.cf.dim,), jnp.float32)
      params.update(fece=fece, cf=cf_params)
    return params

  def slot_vectors(self, params, batch) -> tuple[Array, Array]:
    """Mapped (user [B, n, D], item [B, n, D]) embeddings for the ID slots."""
    user, item = self.cf.vectors(params["cf"], params["fece"], batch)  # [B, d] each
    return (apply_mapper(params["fece"], user, self.proj_token_num),
            apply_mapper(params["fece"], item, self.proj_token_num))

  def inputs_embeds(self, params, batch) -> Array:
    """Token embeddings of the prompt [B, T, D], ID slots overwritten by the mapped CF vectors (CoLLM only)."""
    embeds = self.decoder.apply({"params": params["llm"]}, batch["input_ids"], method=Decoder.embed)  # [B, T, D]
    if self.cf is None:
      return embeds
    user, item = self.slot_vectors(params, batch)
    embeds = replace_slots(embeds, user, batch["user_slot_pos"])
    return replace_slots(embeds, item, batch["item_slot_pos"])

  def answer_logits(self, params, batch, rng: Array | None = None) -> Array:
    """[B, 2] float32 logits of (Yes, No) at the last prompt position; `rng` turns on LoRA dropout (training)."""
    return self._head(params, self._final(params, batch, rng))

  def _final(self, params, batch, rng: Array | None = None) -> Array:
    """The normed last hidden states [B, T, D] of the prompts."""
    variables = {"params": params["llm"], "lora": params.get("lora", {})}
    out = self.decoder.apply(
        variables, inputs_embeds=self.inputs_embeds(params, batch), attention_mask=batch["attention_mask"],
        compute_logits=False, deterministic=rng is None, rngs=None if rng is None else {"dropout": rng})
    return out["last_hidden_state"]

  def input_lm_loss(self, params, batch, final: Array) -> Array:
    """Mean next-token cross-entropy of the prompt's tokens (position t predicts token t + 1, both real), over the
    whole vocabulary, in float32: the loss of a causal LM trained on its inputs."""
    logits = self._f32_logits(params, final[:, :-1])  # [B, T-1, V]
    mask = batch["attention_mask"]
    valid = ((mask[:, :-1] > 0) & (mask[:, 1:] > 0)).astype(jnp.float32)  # [B, T-1]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["input_ids"][:, 1:])  # [B, T-1]
    return jnp.sum(ce * valid) / jnp.maximum(jnp.sum(valid), 1.0)

  def shared_answer_logits(self, params, prefix, suffix) -> Array:
    """[B, 2] (Yes, No) logits of suffix rows scored after their group's prefix (`jaxrec.models.prefix`): the
    prefix batch [G, Tp] runs once and keeps its keys / values, each suffix row [B, Ts] attends to its group's
    (`suffix['group']` [B]). Equal to `answer_logits` of the whole prompts (deterministic)."""
    variables, kv = self._prefix_kv(params, prefix)
    group = suffix["group"]  # [B]
    past = jax.tree_util.tree_map(lambda x: jnp.take(x, group, axis=1), kv)  # [L, B, Tp, KV, Dh]
    out = self.decoder.apply(variables, inputs_embeds=self.inputs_embeds(params, suffix),
                             attention_mask=suffix["attention_mask"], past_kv=past,
                             past_mask=jnp.take(prefix["attention_mask"], group, axis=0), compute_logits=False)
    return self._head(params, out["last_hidden_state"])

  def packed_answer_logits(self, params, prefix, packed) -> Array:
    """[R, M, 2] (Yes, No) logits of suffixes packed several to a row (`jaxrec.models.prefix.pack`) after one
    shared prefix [1, Tp]: each suffix sees the prefix and its own tokens, positions restart after the prefix, and
    the answer is read at each suffix's last token (`packed['ends']` [R, M], -1 = none). Text-only prompts (no ID
    slot after the prefix). Equal to `answer_logits` of the whole prompts (deterministic)."""
    variables, kv = self._prefix_kv(params, prefix)
    r = packed["input_ids"].shape[0]
    past = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (x.shape[0], r) + x.shape[2:]), kv)
    embeds = self.inputs_embeds(params, packed)  # [R, C, D]: text only, no slot to fill
    out = self.decoder.apply(variables, inputs_embeds=embeds, attention_mask=packed["attention_mask"],
                             past_kv=past, past_mask=jnp.broadcast_to(prefix["attention_mask"],
                                                                      (r, prefix["attention_mask"].shape[1])),
                             segment_ids=packed["segment_ids"], compute_logits=False)
    return self._head_at(params, out["last_hidden_state"], jnp.maximum(packed["ends"], 0))  # [R, M, 2]

  def _prefix_kv(self, params, prefix):
    """(the decoder's variables, the prefix batch's keys / values {'k', 'v': [L, G, Tp, KV, Dh]})."""
    variables = {"params": params["llm"], "lora": params.get("lora", {})}
    pre = self.decoder.apply(variables, inputs_embeds=self.inputs_embeds(params, prefix),
                             attention_mask=prefix["attention_mask"], compute_logits=False, return_kv=True)
    return variables, pre["kv"]

  def _head_at(self, params, final: Array, positions: Array) -> Array:
    """[B, P, 2] float32 (Yes, No) logits read at `positions` [B, P] of normed hidden states `final` [B, T, D]."""
    # The two head rows are applied in float32 whatever the compute dtype: bfloat16 logits keep ~3 digits, which
    # ties many scores and blurs AUC.
    return self._f32_logits(params, final, positions.astype(jnp.int32), jnp.asarray(self.answer_ids, jnp.int32))

  def _f32_logits(self, params, final: Array, positions: Array | None = None, token_ids: Array | None = None):
    """The decoder's own head (tied or not) on a float32 clone: `Decoder.logits` of `final` [B, T, D] in float32."""
    head = self.decoder.clone(dtype=jnp.float32)
    return head.apply({"params": params["llm"]}, final.astype(jnp.float32), positions, token_ids,
                      method=Decoder.logits)

  def _head(self, params, final: Array) -> Array:
    """[B, 2] float32 (Yes, No) logits read at the last column of `final` [B, T, D] (prompts are left-padded)."""
    b, t = final.shape[:2]
    return self._head_at(params, final, jnp.full((b, 1), t - 1, jnp.int32))[:, 0]  # [B, 2]

  def z_of(self, logits: Array) -> Array:
    """[...] z with P(Yes) = sigmoid(z) from [..., 2] (Yes, No) logits (see the module docstring for each head)."""
    return logits[..., 0] if self.head == "collm" else logits[..., 0] - logits[..., 1]

  def score_logits(self, params, batch, rng: Array | None = None) -> Array:
    """[B] z with P(Yes) = sigmoid(z) (see the module docstring for each head)."""
    return self.z_of(self.answer_logits(params, batch, rng))

  def probabilities(self, params, batch) -> Array:
    """[B] P(Yes), deterministic."""
    return jax.nn.sigmoid(self.score_logits(params, batch))

  def loss(self, params, batch, rng: Array) -> tuple[Array, dict[str, Array]]:
    """(BCE of z against `label`, weighted by `weight` when the batch has it, + λ · the prompt's LM loss; aux
    scalars)."""
    final = self._final(params, batch, rng)  # [B, T, D]
    z = self.z_of(self._head(params, final))  # [B]
    label = batch["label"].astype(jnp.float32)
    per_row = optax.sigmoid_binary_cross_entropy(z, label)  # [B]
    w = batch["weight"].astype(jnp.float32) if "weight" in batch else jnp.ones_like(per_row)
    loss = jnp.sum(per_row * w) / jnp.maximum(jnp.sum(w), 1e-9)
    p = jax.nn.sigmoid(z)
    aux = {"p_yes": jnp.mean(p), "acc": jnp.mean(((p > 0.5) == (label > 0.5)).astype(jnp.float32))}
    if self.input_lm_weight > 0:
      aux["input_lm"] = self.input_lm_loss(params, batch, final)
      loss = loss + self.input_lm_weight * aux["input_lm"]
    return loss, aux


def make_loss_fn(model: LLMRec):
  """`loss_fn(trainable, frozen, batch, rng) -> (loss, aux)` for `jaxrec.train.steps.make_train_step`."""

  def loss_fn(trainable, frozen, batch, rng):
    return model.loss(merge(trainable, frozen), batch, rng)

  return loss_fn


def make_score_fn(model: LLMRec):
  """`score_fn(params, batch) -> [B] P(Yes)`, jitted by the evaluator and the re-ranking scorer."""

  def score_fn(params, batch):
    return model.probabilities(params, batch)

  return score_fn


def make_packed_score_fn(model: LLMRec):
  """`score_fn(params, prefix, packed) -> [R, M] P(Yes)` of packed suffixes after one shared prefix."""

  def score_fn(params, prefix, packed):
    return jax.nn.sigmoid(model.z_of(model.packed_answer_logits(params, prefix, packed)))

  return score_fn


def make_shared_score_fn(model: LLMRec):
  """`score_fn(params, prefix, suffix) -> [B] P(Yes)` of suffix rows after their shared prefixes."""

  def score_fn(params, prefix, suffix):
    return jax.nn.sigmoid(model.z_of(model.shared_answer_logits(params, prefix, suffix)))

  return score_fn
