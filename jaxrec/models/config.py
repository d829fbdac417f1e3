"""The `config.model` section of the LLM recommenders (TALLRec, CoLLM-FaissRet) and its value checks.

  family: 'llmrec'              picks the LLM trainer in launch/_cli.py:FAMILIES ('cf' is the CF baselines')
  llm: str | None               None = the embedded SmolLM2-135M (GGUF); a `.gguf` path; a HF directory or hub id;
                                'random' = a random decoder shaped by `random_llm` (tests and `:tiny` configs)
  tokenizer: str | None         None = the llm's own (the embedded SmolLM2's for None and 'random')
  random_llm: hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads  (llm='random' only; the
                                vocabulary size is the tokenizer's)
  dtype: 'float32' | 'bfloat16' storage and compute dtype of the backbone (adapters and mapper stay float32)
  keep_layers: int              budget knob: keep only the first N decoder layers (<= 0: all)
  remat: bool                   recompute each block in the backward pass (less memory, ~30% more compute)
  lora: rank (0 = no adapters), alpha, dropout, targets (regexes over the backbone's parameter paths)
  head: 'collm' | 'tallrec'     P(Yes) = sigmoid(logit_Yes) (CoLLM, BCE on the raw logit) or softmax over the
                                Yes / No logits (TALLRec); both at the last prompt position
  answers: [yes, no]            answer words; their first token as they follow the prompt is scored
  template: str | None          a name in `jaxrec.data.prompts.TEMPLATES`, or None = config.data.template
  proj_token_num: int           LLM tokens per ID slot; must equal config.data.proj_token_num
  fece: hidden_factor           mapper width multiplier (CoLLM: d → 10·d → ReLU → D·proj_token_num)
  cf:
    name: 'none' | 'mf' | 'lightgcn' | 'sasrec' | 'din'   'none' = TALLRec (text only, no mapper)
    workdir: str | None         a finished CF run (launch/train.py with configs/baselines/<name>.py) on the same
                                data; its exported embeddings or its best parameters are loaded, frozen
    source: 'auto' | 'tables' | 'model'   'auto': tables for id models, the model itself for history models
    user_fallback: 'history' | 'zeros' | 'learned'   user vector for users without a trained id (user 0)
    cold_users: 'id' | 'fallback'   users absent from the CF training split: their (untrained) id vector, as
                                CoLLM does, or the fallback (tables source only)

The parameter pytree is {'llm', 'lora', 'fece', 'cf'}: stage regexes select e.g. 'fece/.*' or 'lora/.*'.
"""

from __future__ import annotations

import ml_collections

from jaxrec.cf import MODELS as CF_MODELS
from jaxrec.data.prompts import TEMPLATES
from jaxrec.config_util import checker, update_strict
from jaxrec.errors import JaxrecError
from jaxrec.llm.lora import DEFAULT_TARGETS
from jaxrec.models.cf_source import FALLBACKS, KINDS

HEADS = ("collm", "tallrec")
DTYPES = ("float32", "bfloat16")
CF_NAMES = ("none",) + tuple(sorted(CF_MODELS))
TINY_LLM = dict(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, num_kv_heads=2)


def model_config(**overrides) -> ml_collections.ConfigDict:
  """The defaults (CoLLM's: LoRA r=8, α=16, dropout 0.05 on q/v; mapper ×10; MF embeddings), updated by
  `overrides` (nested dicts allowed; unknown keys raise)."""
  placeholder = ml_collections.config_dict.placeholder
  cfg = ml_collections.ConfigDict({
      "family": "llmrec",
      "llm": placeholder(str),
      "tokenizer": placeholder(str),
      "random_llm": dict(TINY_LLM),
      "dtype": "float32",
      "keep_layers": -1,
      "remat": False,
      "lora": {"rank": 8, "alpha": 16.0, "dropout": 0.05, "targets": list(DEFAULT_TARGETS)},
      "head": "collm",
      "answers": ["Yes", "No"],
      "template": placeholder(str),
      "proj_token_num": 1,
      "fece": {"hidden_factor": 10},
      "cf": {"name": "mf", "workdir": placeholder(str), "source": "auto", "user_fallback": "history",
             "cold_users": "id"},
  })
  update_strict(cfg, overrides, "config.model")
  return cfg


def tallrec_config(**overrides) -> ml_collections.ConfigDict:
  """TALLRec: text-only prompt, LoRA, softmax over Yes / No."""
  cfg = model_config(head="tallrec", cf={"name": "none"})
  update_strict(cfg, overrides, "config.model")
  return cfg


_check = checker("config.model")


def _int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def validate(cfg) -> None:
  """One-line JaxrecError naming the first impossible value of a `config.model` section."""
  reference = model_config()
  for key in cfg.keys():
    _check(key in reference, key, f"a model field ({', '.join(sorted(reference.keys()))})", key)
  for sub in ("lora", "fece", "cf", "random_llm"):
    for key in cfg[sub].keys():
      _check(key in reference[sub], f"{sub}.{key}", f"one of {sorted(reference[sub].keys())}", key)
  _check(cfg.family == "llmrec", "family", "'llmrec'", cfg.family)
  _check(cfg.dtype in DTYPES, "dtype", f"one of {DTYPES}", cfg.dtype)
  _check(_int(cfg.keep_layers), "keep_layers", "an integer (<= 0 keeps all layers)", cfg.keep_layers)
  if cfg.llm == "random":
    for key, value in cfg.random_llm.items():
      _check(_int(value) and value >= 1, f"random_llm.{key}", "an integer >= 1", value)
    r = cfg.random_llm
    _check(r.num_heads % r.num_kv_heads == 0 and r.hidden_size % r.num_heads == 0, "random_llm",
           "num_kv_heads dividing num_heads dividing hidden_size", r.to_dict())
  lo = cfg.lora
  _check(_int(lo.rank) and lo.rank >= 0, "lora.rank", "an integer >= 0 (0 = no adapters)", lo.rank)
  _check(lo.alpha > 0, "lora.alpha", "a value > 0", lo.alpha)
  _check(0 <= lo.dropout < 1, "lora.dropout", "a value in [0, 1)", lo.dropout)
  _check(lo.rank == 0 or len(lo.targets) > 0, "lora.targets", "at least one regex", list(lo.targets))
  _check(cfg.head in HEADS, "head", f"one of {HEADS}", cfg.head)
  _check(len(cfg.answers) == 2 and all(isinstance(a, str) and a.strip() for a in cfg.answers)
         and cfg.answers[0] != cfg.answers[1], "answers", "two different non-empty words [yes, no]",
         list(cfg.answers))
  _check(cfg.template is None or cfg.template in TEMPLATES, "template",
         f"None (config.data.template) or one of {sorted(TEMPLATES)}", cfg.template)
  _check(_int(cfg.proj_token_num) and cfg.proj_token_num >= 1, "proj_token_num", "an integer >= 1",
         cfg.proj_token_num)
  _check(_int(cfg.fece.hidden_factor) and cfg.fece.hidden_factor >= 1, "fece.hidden_factor", "an integer >= 1",
         cfg.fece.hidden_factor)
  cf = cfg.cf
  _check(cf.name in CF_NAMES, "cf.name", f"one of {CF_NAMES}", cf.name)
  _check(cf.source in ("auto",) + KINDS, "cf.source", f"one of {('auto',) + KINDS}", cf.source)
  _check(cf.user_fallback in FALLBACKS, "cf.user_fallback", f"one of {FALLBACKS}", cf.user_fallback)
  _check(cf.cold_users in ("id", "fallback"), "cf.cold_users", "'id' or 'fallback'", cf.cold_users)
  if cf.name == "none":
    _check(cfg.lora.rank > 0, "lora.rank", "an integer >= 1 when cf.name is 'none' (nothing would train)",
           cfg.lora.rank)


def prompt_settings(cfg, data_cfg) -> tuple[str, int]:
  """(template text, proj_token_num) that the prompt pipeline must use for this model (checked against data)."""
  template = TEMPLATES[cfg.template] if cfg.template is not None else data_cfg.template
  if int(data_cfg.get("proj_token_num", 1)) != int(cfg.proj_token_num):
    raise JaxrecError(f"config.model.proj_token_num={cfg.proj_token_num} differs from "
                      f"config.data.proj_token_num={data_cfg.get('proj_token_num', 1)}; set both")
  return template, int(cfg.proj_token_num)
