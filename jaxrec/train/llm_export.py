"""A finished LLM-recommender run's models, out in the formats people load.

  export_run(workdir, 'peft')   LoRA adapters in PEFT's format (what training writes to <workdir>/adapter/)
  export_run(workdir, 'hf')     the backbone with LoRA merged as a transformers checkpoint (config.json,
                                model.safetensors, tokenizer files) that `AutoModelForCausalLM.from_pretrained`
                                loads; for CoLLM runs the mapper and the CF parameters beside it as safetensors, with
                                collm.json saying how they fit together
"""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

from jaxrec.errors import JaxrecError
from jaxrec.llm import backbone, export, lora
from jaxrec.paths import atomic_dir
from jaxrec.train import llm_task, loop, workdir as run_dir
from jaxrec.tree import flatten

FORMATS = ("peft", "hf")


def _save_tree(path: pathlib.Path, tree) -> list[str]:
  from safetensors.numpy import save_file

  flat = {k: np.ascontiguousarray(np.asarray(v)) for k, v in flatten(tree).items()}
  save_file(flat, str(path))
  return sorted(flat)


def export_run(workdir, fmt: str = "peft", output=None) -> pathlib.Path:
  """Writes the run's models in `fmt` to `output` (default <workdir>/adapter or <workdir>/hf), atomically."""
  if fmt not in FORMATS:
    raise JaxrecError(f"--format={fmt}: expected one of {', '.join(FORMATS)}")
  workdir = pathlib.Path(workdir)
  config = run_dir.read_config(workdir)
  if config.model.get("family") != "llmrec":
    raise JaxrecError(f"{workdir / 'config.json'}: model.family {config.model.get('family')!r}; export covers "
                      f"the LLM recommenders (family 'llmrec'); CF runs export embeddings/ already")
  if not any((workdir / "checkpoints").glob("*/done.json")):
    raise JaxrecError(f"{workdir}: no finished stage to export (train it first)")
  runner = llm_task.Runner(config)
  with run_dir.claim(workdir, shared=True):  # not while a run trains it
    params = jax.device_get(loop.restore_params(config, workdir, runner.params))
  lcfg = backbone.lora_config(config.model)
  cfg = runner.model.decoder.cfg
  out = pathlib.Path(output) if output else workdir / ("adapter" if fmt == "peft" else "hf")
  with atomic_dir(out) as tmp:
    if fmt == "peft":
      if lcfg is None:
        raise JaxrecError(f"{workdir}: config.model.lora.rank is 0: the run has no adapters to export")
      lora.save_peft(tmp, params["lora"], lcfg, cfg.num_layers, base_model=str(config.model.llm or "SmolLM2-135M"))
      return out
    llm = params["llm"] if lcfg is None else lora.merge(params["llm"], params["lora"], lcfg.scale)
    export.save_hf(tmp, cfg, llm, runner.tok)
    if runner.model.cf is not None:
      info = {
          "what": "CoLLM-FaissRet: the CF model's user / item vectors pass through the mapper (FECE) into the LLM's "
                  "token space and replace the embeddings of the prompt's ID slots before the backbone runs",
          "mapper": {"file": "collm_mapper.safetensors", "keys": _save_tree(tmp / "collm_mapper.safetensors",
                                                                            params["fece"]),
                     "formula": "y = relu(x @ fc1/kernel + fc1/bias) @ fc2/kernel + fc2/bias, reshaped to "
                                "[proj_token_num, hidden_size]"},
          "cf": {"file": "collm_cf.safetensors", "keys": _save_tree(tmp / "collm_cf.safetensors", params["cf"]),
                 "name": config.model.cf.name, "dim": int(runner.model.cf.dim)},
          "proj_token_num": int(runner.model.proj_token_num),
          "template": runner.default_template,
          "head": config.model.head,
          "answer": "P(Yes) from the logits of the answer tokens at the last prompt position",
          "item_vectors": "embeddings/item.npy (CF) and embeddings/item_llm.npy (mapped) in the run's workdir",
      }
      (tmp / "collm.json").write_text(json.dumps(info, indent=2) + "\n")
  return out
