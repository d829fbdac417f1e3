"""From a `config.model` section (see `jaxrec.models.config`) to an `LLMRec` and its initial params pytree.

  tok = backbone.load_tokenizer(config.model)
  template, _ = prompt_settings(config.model, config.data)
  model, params = build(config.model, tokenizer=tok, template=template, n_users=ds.n_users, n_items=ds.n_items,
                        train_users=ds.splits['train'].user)

The CF side is read from `config.model.cf.workdir`'s exported tables when the source is 'tables'; a 'model' source
(SASRec / DIN) needs the CF module and its restored variables, which the training task passes as `cf_model` /
`cf_params` (restoring a run's checkpoints is the train package's job, which models do not import).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrec.errors import JaxrecError
from jaxrec.llm import backbone, stacking
from jaxrec.models import cf_source
from jaxrec.models.config import validate
from jaxrec.models.llmrec import LLMRec, answer_token_ids


def load_cf_params(model_cfg, n_users: int, n_items: int, train_users=None) -> dict[str, Any]:
  """The 'tables' CF subtree from `config.model.cf.workdir` (+ `user_known` when cold users use the fallback)."""
  cf = model_cfg.cf
  if not cf.workdir:
    raise JaxrecError(f"config.model.cf.workdir: required for cf.name={cf.name!r} (a finished CF run's workdir)")
  tables = cf_source.load_tables(cf.workdir, n_users, n_items)
  return add_known_users(model_cfg, tables, n_users, train_users)


def add_known_users(model_cfg, tables: dict[str, Any], n_users: int, train_users=None) -> dict[str, Any]:
  """Adds `user_known` to a tables subtree when `cf.cold_users == 'fallback'` (needs the CF training users)."""
  if model_cfg.cf.cold_users != "fallback" or "user" not in tables:
    return tables
  if train_users is None:
    raise JaxrecError("config.model.cf.cold_users='fallback' needs the training split's users")
  return dict(tables, user_known=jnp.asarray(cf_source.known_users(train_users, n_users)))


def build(model_cfg, *, tokenizer, template: str, llm=None, cf_params=None, cf_model=None, n_users: int = 0,
          n_items: int = 0, train_users=None, seed: int = 0) -> tuple[LLMRec, dict[str, Any]]:
  """(model, initial params) for `config.model`.

  Args:
    model_cfg: the `config.model` section.
    tokenizer: the model's tokenizer (answer token ids; vocabulary of a random LLM).
    template: the prompt template text the batches were rendered with (its tail fixes the answer tokens).
    llm: optional (LlamaConfig, params) already loaded (e.g. shared between runs); else `backbone.load_llm`.
    cf_params / cf_model: the CF subtree (and, for source 'model', the `jaxrec.cf.CFModel`); when None for a
      'tables' source they are loaded from `cf.workdir` for a dataset of n_users / n_items.
    train_users: users of the CF training split ([N] ids), for `cf.cold_users='fallback'`.
    seed: initialises adapters, mapper (and a random LLM).
  """
  validate(model_cfg)
  llm_cfg, llm_params = backbone.load_llm(model_cfg, tokenizer, seed) if llm is None else \
      backbone.truncate_layers(*llm, int(model_cfg.keep_layers))
  source = None
  if model_cfg.cf.name != "none":
    kind = cf_source.resolve_kind(model_cfg.cf.name, model_cfg.cf.source)
    if cf_params is None and kind == "model":
      raise JaxrecError(f"config.model.cf: {model_cfg.cf.name!r} runs as a model (source 'model'); the training "
                        f"task must restore it from {model_cfg.cf.workdir} and pass it")
    if cf_params is None:
      cf_params = load_cf_params(model_cfg, n_users, n_items, train_users)
    source = cf_source.make_source(model_cfg.cf, cf_params, cf_model)
  model = make_model(model_cfg, llm_cfg, answer_token_ids(tokenizer, template, tuple(model_cfg.answers)), source)
  return model, init_params(model, model_cfg, jax.random.fold_in(jax.random.PRNGKey(seed), 1), llm_params, cf_params)


def make_model(model_cfg, llm_cfg, answer_ids: tuple[int, int], source=None) -> LLMRec:
  """The LLMRec of `config.model` over a backbone of shape `llm_cfg` (layers already truncated)."""
  return LLMRec(decoder=backbone.decoder(model_cfg, llm_cfg), answer_ids=answer_ids, head=model_cfg.head,
                proj_token_num=int(model_cfg.proj_token_num), cf=source,
                fece_hidden_factor=int(model_cfg.fece.hidden_factor),
                input_lm_weight=float(model_cfg.input_lm_weight))


def init_params(model: LLMRec, model_cfg, rng, llm_params, cf_params=None) -> dict[str, Any]:
  """`model.init` with `config.model`'s LoRA; under scan_layers the backbone and adapters, loaded and adapted per
  layer, are stacked once for nn.scan."""
  params = model.init(rng, llm_params, backbone.lora_config(model_cfg), cf_params)
  if model_cfg.scan_layers:
    params["llm"] = stacking.stack_layers(params["llm"], "config.model.llm")
    params["lora"] = stacking.stack_layers(params["lora"], "config.model.lora.targets")
  return params
