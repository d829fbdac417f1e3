"""Writing a backbone as a transformers checkpoint: config.json + model.safetensors (+ the tokenizer's files).

The key table is the loader's `HF_TABLE` read backwards: each (HF name pattern, our path pattern, transform) row
becomes (our path regex, HF name template, inverse transform), so loading and exporting cannot drift apart. LoRA
is merged into the kernels first (`lora.merge`, W + α/r · A B), so the checkpoint loads with
`AutoModelForCausalLM.from_pretrained` alone, without peft.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import numpy as np

from jaxrec.errors import JaxrecError
from jaxrec.llm.config import LlamaConfig
from jaxrec.llm.loading import HF_TABLE
from jaxrec.tree import flatten

_INVERSE = {"identity": lambda w: w, "transpose": lambda w: w.T}  # each the inverse of the loader's transform
_GROUP = re.compile(r"\((?!\?)(?:[^()]|\([^()]*\))*\)")  # a capturing group of a HF_TABLE source pattern


def export_table(table=HF_TABLE) -> list[tuple[re.Pattern, str, str]]:
  """(regex over our '/'-joined paths, HF name template with \\1.., transform) for every row of `table`."""
  rows = []
  for src, dst, fn in table:
    groups = _GROUP.findall(src)
    ours = re.sub(r"\\(\d)", lambda m: groups[int(m.group(1)) - 1], dst)
    k = iter(range(1, len(groups) + 1))
    theirs = _GROUP.sub(lambda m: f"\\{next(k)}", src).replace(r"\.", ".")
    rows.append((re.compile(ours + r"\Z"), theirs, fn))
  return rows


def hf_tensors(params: dict[str, Any], cfg: LlamaConfig) -> dict[str, np.ndarray]:
  """Our backbone params → {HF tensor name: float32 array}; every leaf must map (a strict check, as loading)."""
  rows = export_table()
  out, unmapped = {}, []
  for path, leaf in flatten(params).items():
    for pat, theirs, fn in rows:
      m = pat.match(path)
      if m:
        out[m.expand(theirs)] = np.ascontiguousarray(_INVERSE[fn](np.asarray(leaf, np.float32)))
        break
    else:
      unmapped.append(path)
  if unmapped:
    raise JaxrecError(f"export: parameters with no Hugging Face name: {', '.join(sorted(unmapped))}")
  if cfg.tie_word_embeddings:
    out.pop("lm_head.weight", None)
  return out


def hf_config(cfg: LlamaConfig) -> dict[str, Any]:
  """The config.json transformers reads back into the same model (`config.from_hf_dict` inverts it)."""
  arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}
  if cfg.model_type not in arch:
    raise JaxrecError(f"export: model_type {cfg.model_type!r} cannot be exported (expected one of {sorted(arch)})")
  rope = {"rope_type": "default", "rope_theta": cfg.rope_theta} | cfg.rope_scaling_dict
  d = {"architectures": [arch[cfg.model_type]], "model_type": cfg.model_type, "vocab_size": cfg.vocab_size,
       "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
       "num_hidden_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
       "num_key_value_heads": cfg.num_kv_heads, "head_dim": cfg.head_dim, "rms_norm_eps": cfg.rms_norm_eps,
       "rope_theta": cfg.rope_theta, "rope_parameters": rope, "hidden_act": "silu",
       "max_position_embeddings": cfg.max_position_embeddings, "tie_word_embeddings": cfg.tie_word_embeddings,
       "bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id, "pad_token_id": cfg.pad_token_id,
       "torch_dtype": "float32", "dtype": "float32"}
  if cfg.model_type == "llama":
    if cfg.attention_bias != cfg.o_bias:
      raise JaxrecError("export: a Llama with q/k/v biases but no o bias has no transformers config")
    d.update(attention_bias=cfg.attention_bias, mlp_bias=cfg.mlp_bias)
  return d


def save_hf(directory: pathlib.Path, cfg: LlamaConfig, params: dict[str, Any], tokenizer=None) -> None:
  """Writes config.json, model.safetensors and (given a transformers tokenizer) its files into `directory`."""
  from safetensors.numpy import save_file

  from jaxrec.llm.stacking import unstack_layers

  params = unstack_layers(params)  # transformers names each layer
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  (directory / "config.json").write_text(json.dumps(hf_config(cfg), indent=2, sort_keys=True) + "\n")
  save_file(hf_tensors(params, cfg), str(directory / "model.safetensors"), metadata={"format": "pt"})
  if tokenizer is not None:
    tokenizer.save_pretrained(str(directory))
