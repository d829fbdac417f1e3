"""Tiny random Hugging Face checkpoints written with `save_pretrained`, the reference for the Flax decoder."""

from __future__ import annotations

import numpy as np

TINY = dict(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64)
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 50000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}


def tiny_hf(kind: str, directory, seed: int = 0, **kw):
  """Saves a tiny random `kind` ('llama' | 'qwen2') checkpoint to `directory` and returns the torch model (eval)."""
  import torch
  from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

  torch.manual_seed(seed)
  if kind == "llama":
    model = LlamaForCausalLM(LlamaConfig(**(TINY | {"rope_parameters": LLAMA3_ROPE} | kw)))
  else:
    model = Qwen2ForCausalLM(Qwen2Config(**(TINY | {"tie_word_embeddings": True} | kw)))
  model.eval()
  model.save_pretrained(str(directory))
  return model


def left_padded_batch(vocab: int = 101, seed: int = 0):
  """ids [3, 11] with rows left-padded by 0, 4 and 7 tokens; mask; positions counted over real tokens."""
  rng = np.random.RandomState(seed)
  ids = rng.randint(3, vocab, (3, 11)).astype(np.int64)
  mask = np.ones_like(ids)
  for row, pad in ((1, 4), (2, 7)):
    ids[row, :pad], mask[row, :pad] = 0, 0
  pos = np.clip(mask.cumsum(-1) - 1, 0, None)
  return ids, mask, pos


def torch_logits(model, ids, mask, pos, **kw):
  import torch

  with torch.no_grad():
    return model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), position_ids=torch.tensor(pos),
                 **kw)


def tiny_decoder():
  """(LlamaConfig, params, adapters) of a random 3-layer grouped-query decoder with LoRA on q / v whose B ≠ 0 (so
  the adapters change every layer's keys, values and outputs)."""
  import flax.linen as nn
  import jax
  import jax.numpy as jnp

  from jaxrec.llm import lora
  from jaxrec.llm.config import LlamaConfig
  from jaxrec.llm.model import Decoder

  cfg = LlamaConfig(vocab_size=101, hidden_size=32, intermediate_size=64, num_layers=3, num_heads=4, num_kv_heads=2,
                    head_dim=8)
  params = nn.meta.unbox(Decoder(cfg).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"])
  adapters = lora.init(params, lora.LoraConfig(rank=4, alpha=8.0, dropout=0.0), jax.random.key(1))
  return cfg, params, jax.tree.map(lambda x: x + 0.05, adapters)
