"""The `config.model` section of the LLM recommenders (TALLRec, CoLLM-FaissRet) and its value checks.

  family: 'llmrec'              picks `jaxrec.train.llm_task` in jaxrec/train/task.py:FAMILIES
  llm, tokenizer, random_llm, dtype, keep_layers, remat, lora   the backbone (`jaxrec.llm.backbone`, shared with
                                the multi-scale recommender)
  head: 'collm' | 'tallrec'     P(Yes) = sigmoid(logit_Yes) (CoLLM, BCE on the raw logit) or softmax over the
                                Yes / No logits (TALLRec); both at the last prompt position
  answers: [yes, no]            answer words; their first token as they follow the prompt is scored
  input_lm_weight: float        λ ≥ 0 of a language-model loss on the prompt's own tokens (TALLRec's
                                `--train_on_inputs`): loss = BCE(answer) + λ · mean next-token cross-entropy over
                                the prompt; text-only prompts (cf.name 'none'); 0 = the answer alone
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
from jaxrec.llm import backbone
from jaxrec.models.cf_source import FALLBACKS, KINDS

HEADS = ("collm", "tallrec")
CF_NAMES = ("none",) + tuple(sorted(CF_MODELS))


def model_config(**overrides) -> ml_collections.ConfigDict:
  """The defaults (CoLLM's: LoRA r=8, α=16, dropout 0.05 on q/v; mapper ×10; MF embeddings), updated by
  `overrides` (nested dicts allowed; unknown keys raise)."""
  placeholder = ml_collections.config_dict.placeholder
  cfg = ml_collections.ConfigDict({
      "family": "llmrec",
      **backbone.fields(),
      "head": "collm",
      "answers": ["Yes", "No"],
      "input_lm_weight": 0.0,
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

is_int = backbone.is_int


def validate(cfg) -> None:
  """One-line JaxrecError naming the first impossible value of a `config.model` section."""
  reference = model_config()
  for key in cfg.keys():
    _check(key in reference, key, f"a model field ({', '.join(sorted(reference.keys()))})", key)
  for sub in ("fece", "cf"):
    for key in cfg[sub].keys():
      _check(key in reference[sub], f"{sub}.{key}", f"one of {sorted(reference[sub].keys())}", key)
  _check(cfg.family == "llmrec", "family", "'llmrec'", cfg.family)
  backbone.validate(cfg)
  _check(cfg.head in HEADS, "head", f"one of {HEADS}", cfg.head)
  _check(len(cfg.answers) == 2 and all(isinstance(a, str) and a.strip() for a in cfg.answers)
         and cfg.answers[0] != cfg.answers[1], "answers", "two different non-empty words [yes, no]",
         list(cfg.answers))
  lm_w = cfg.input_lm_weight
  _check(isinstance(lm_w, (int, float)) and not isinstance(lm_w, bool) and lm_w >= 0, "input_lm_weight",
         "a number >= 0", lm_w)
  _check(lm_w == 0 or cfg.cf.name == "none", "input_lm_weight",
         "0 with a CF model (ID-slot tokens are not text to predict); set cf.name='none' (TALLRec)", lm_w)
  _check(cfg.template is None or cfg.template in TEMPLATES, "template",
         f"None (config.data.template) or one of {sorted(TEMPLATES)}", cfg.template)
  _check(is_int(cfg.proj_token_num) and cfg.proj_token_num >= 1, "proj_token_num", "an integer >= 1",
         cfg.proj_token_num)
  _check(is_int(cfg.fece.hidden_factor) and cfg.fece.hidden_factor >= 1, "fece.hidden_factor", "an integer >= 1",
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
