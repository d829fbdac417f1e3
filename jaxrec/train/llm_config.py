"""Shared pieces of the LLM-recommender configs (configs/{ml100k,ml1m,bookcrossing,amazon_book,tallrec_*}.py).

`get_config(arg)` in each experiment passes its arg here: comma-separated tokens, optionally 'tiny' (a random
2-layer LLM, a few dozen rows, a few steps: for tests) and 'collm_order' (CoLLM's released stage order).

Stage orders (config data, not code paths):
  'fece_then_lora' (default, the design card's): stage 1 trains the FECE mapper with the LLM frozen, stage 2 the
      LoRA adapters with the mapper frozen (set `stages[1].trainable` to add 'fece/.*').
  'collm_order' (CoLLM's released scripts): stage 1 LoRA on the text-only prompt, stage 2 the mapper with LoRA
      frozen on the prompt with ID slots.
  TALLRec: one LoRA stage on the text-only prompt.

When `model.cf.workdir` is empty the CF model is trained first into `<workdir>/cf` from `config.cf_train` (a full
CF baseline config), so one command runs the whole pipeline.
"""

from __future__ import annotations

import ml_collections

from jaxrec.errors import JaxrecError
from jaxrec.models import model_config, tallrec_config
from jaxrec.train import cf_config
from jaxrec.train.config import stage_config

# Budget for a 2-core CPU (~10-15 min a run): the first 4 of SmolLM2's 30 layers, 48 steps of 8 prompts per stage,
# validation on 256 rows every 12 steps. Raise them with --config.model.keep_layers=-1 --config.stages[i].max_steps=…
# --config.data.max_eval_rows=-1 on an accelerator.
CPU_BUDGET = dict(keep_layers=4, max_train_rows=1024, max_eval_rows=256, batch_size=8, steps_per_stage=48)


def parse_arg(arg: str | None) -> tuple[bool, bool]:
  tokens = [t for t in (arg or "").replace(":", ",").split(",") if t]
  unknown = [t for t in tokens if t not in ("tiny", "collm_order")]
  if unknown:
    raise JaxrecError(f"config arg {arg!r}: unknown token {unknown[0]!r}; expected 'tiny' and/or 'collm_order'")
  return "tiny" in tokens, "collm_order" in tokens


def _stage(name, trainable, lr, steps, tiny, template=None, patience=3):
  return stage_config(
      name=name, trainable=trainable, template=template,
      optimizer=dict(lr=lr, weight_decay=1e-3, warmup_steps=2 if tiny else 20, schedule="cosine"),
      num_epochs=1 if tiny else 3, max_steps=4 if tiny else steps, eval_every=2 if tiny else max(steps // 4, 1),
      early_stopping=dict(metric="auc", mode="max", patience=patience))


def llm_config(dataset: str, arg: str | None, *, cf: str = "mf", text_template: str, slot_template: str,
               cf_dataset: str | None = None, head: str = "collm") -> ml_collections.ConfigDict:
  """A two-stage CoLLM-FaissRet config (or TALLRec when cf == 'none') for `dataset` (a jaxrec.data name)."""
  from jaxrec.data import get_data_config

  tiny, collm_order = parse_arg(arg)
  b = CPU_BUDGET
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = get_data_config(dataset)
  config.data.max_train_rows = 48 if tiny else b["max_train_rows"]
  config.data.max_eval_rows = 24 if tiny else b["max_eval_rows"]
  # Tiny: 3 history items keep every dataset's prompts (BookCrossing's longest: 231 tokens) under one padded length,
  # so each stage compiles one step, and configs with the same parameter shapes (the TALLRec ones) share it.
  config.data.prompt_history = 3 if tiny else 10
  if tiny:
    config.data.pad_multiple = 256
  tallrec = cf == "none"
  model = tallrec_config() if tallrec else model_config(head=head, cf={"name": cf})
  model.template = text_template if tallrec else slot_template
  if tiny:
    model.llm = "random"
  model.keep_layers = -1 if tiny else b["keep_layers"]
  config.model = model
  config.batch_size = 4 if tiny else b["batch_size"]
  config.eval_batch_size = 8 if tiny else 16
  config.log_every = 1 if tiny else 8
  config.checkpoint_every = 2 if tiny else 32
  # Devices on the mesh's data / model axes (-1 = all that remain). Tiny runs stay on one device.
  config.mesh = ml_collections.ConfigDict(dict(data=1 if tiny else -1, model=1))
  steps = b["steps_per_stage"]
  if tallrec:
    config.stages = [_stage("lora", ["lora/.*"], 1e-3, steps, tiny)]
  elif collm_order:
    config.stages = [_stage("lora", ["lora/.*"], 1e-3, steps, tiny, template=text_template),
                     _stage("fece", ["fece/.*"], 1e-3, steps, tiny)]
  else:
    config.stages = [_stage("fece", ["fece/.*"], 1e-3, steps, tiny), _stage("lora", ["lora/.*"], 1e-3, steps, tiny)]
  splits = [s for s in ("valid", "valid_small") if dataset in ("ml1m_collm", "ml100k", "amazon_book") or s == "valid"]
  config.eval = ml_collections.ConfigDict(dict(split="valid_small" if "valid_small" in splits else "valid",
                                               final_splits=splits))
  if not tallrec:
    config.cf_train = cf_config.baseline_config(cf, cf_dataset or dataset, tiny)
  return config
