"""Greedy decoding and prompt scoring with the decoder (small-scale utilities: no KV cache).

Generation keeps one fixed-shape buffer `[pad…, prompt, free…]` so the jitted forward compiles once; each step
reads the logits at the last filled position and writes the argmax after it. That is O(T²) per token, which is fine
for the short answers a recommender needs (and for the smoke tests), not for long-form generation.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np


@functools.partial(jax.jit, static_argnames=("model",))
def _next_token(model, variables, ids, mask, pos):
  out = model.apply(variables, ids, attention_mask=mask, logit_positions=pos[:, None])
  return jnp.argmax(out["logits"][:, 0], axis=-1)  # [B]


def greedy_generate(model, variables: dict[str, Any], prompts: Sequence[Sequence[int]], max_new_tokens: int,
                    eos_id: int | None = None, pad_id: int = 0) -> list[list[int]]:
  """Greedy continuation of each prompt (token id lists); stops a row at `eos_id`. Returns the new tokens only."""
  b, longest = len(prompts), max(len(p) for p in prompts)
  total = longest + max_new_tokens
  ids = np.full((b, total), pad_id, np.int32)
  mask = np.zeros((b, total), np.int32)
  for i, p in enumerate(prompts):  # left-pad every prompt so they all end at column `longest - 1`
    ids[i, longest - len(p):longest] = p
    mask[i, longest - len(p):longest] = 1
  done = np.zeros(b, bool)
  new: list[list[int]] = [[] for _ in range(b)]
  for step in range(max_new_tokens):
    pos = np.full((b,), longest - 1 + step, np.int32)
    tok = np.asarray(_next_token(model, variables, jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(pos)))
    for i in range(b):
      if not done[i]:
        new[i].append(int(tok[i]))
        done[i] = eos_id is not None and tok[i] == eos_id
    ids[:, longest + step] = tok
    mask[:, longest + step] = 1
    if done.all():
      break
  return new


def chat_prompt(tokenizer, user_text: str) -> list[int]:
  """Token ids of a one-turn chat prompt with the generation prompt appended (the tokenizer's chat template)."""
  text = tokenizer.apply_chat_template([{"role": "user", "content": user_text}], tokenize=False,
                                       add_generation_prompt=True)
  return tokenizer(text, add_special_tokens=False)["input_ids"]
