"""From a `config.model` section (see `jaxrec.models.config`) to an `LLMRec` and its initial params pytree.

  tok = load_tokenizer(config.model)
  template, _ = prompt_settings(config.model, config.data)
  model, params = build(config.model, tokenizer=tok, template=template, n_users=ds.n_users, n_items=ds.n_items,
                        train_users=ds.splits['train'].user)

The CF side is read from `config.model.cf.workdir`'s exported tables when the source is 'tables'; a 'model' source
(SASRec / DIN) needs the CF module and its restored variables, which the training task passes as `cf_model` /
`cf_params` (restoring a run's checkpoints is the train package's job, which models do not import).
"""

from __future__ import annotations

import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.errors import JaxrecError
from jaxrec.llm import lora
from jaxrec.llm.config import LlamaConfig
from jaxrec.llm.loading import load_pretrained
from jaxrec.llm.model import Decoder, make_decoder
from jaxrec.llm.tokenizer import load_tokenizer as _load_tokenizer
from jaxrec.models import cf_source
from jaxrec.models.config import validate
from jaxrec.models.llmrec import LLMRec, answer_token_ids

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
_LAYER = re.compile(r"layers_(\d+)")


def truncate_layers(cfg: LlamaConfig, params: dict[str, Any], keep: int) -> tuple[LlamaConfig, dict[str, Any]]:
  """Only the first `keep` decoder blocks (final norm and head kept): a budget knob. keep <= 0 keeps all."""
  if keep <= 0 or keep >= cfg.num_layers:
    return cfg, params
  kept = {k: v for k, v in params.items() if not (_LAYER.fullmatch(k) and int(_LAYER.fullmatch(k)[1]) >= keep)}
  return cfg.replace(num_layers=keep), kept


def random_llm(shape, tok, dtype=jnp.float32, seed: int = 0) -> tuple[LlamaConfig, dict[str, Any]]:
  """A random tied-embedding decoder shaped by `config.model.random_llm`, over the tokenizer's vocabulary."""
  cfg = LlamaConfig(
      vocab_size=len(tok), hidden_size=int(shape.hidden_size), intermediate_size=int(shape.intermediate_size),
      num_layers=int(shape.num_layers), num_heads=int(shape.num_heads), num_kv_heads=int(shape.num_kv_heads),
      head_dim=int(shape.hidden_size) // int(shape.num_heads), tie_word_embeddings=True,
      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
  # Shapes by tracing only; values drawn with numpy as the decoder's own initialisers would (N(0, 0.02) weights,
  # unit norm scales, zero biases): compiling flax's init costs seconds, this costs milliseconds.
  shapes = jax.eval_shape(Decoder(cfg, dtype=dtype, param_dtype=dtype).init, jax.random.PRNGKey(0),
                          jnp.zeros((1, 1), jnp.int32))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = path[-1].key
    if name == "scale":
      value = np.ones(leaf.shape, np.float32)
    elif name == "bias":
      value = np.zeros(leaf.shape, np.float32)
    else:
      value = rng.normal(0.0, 0.02, leaf.shape).astype(np.float32)
    return jnp.asarray(value, dtype)

  return cfg, jax.tree_util.tree_map_with_path(draw, nn.meta.unbox(shapes["params"]))


def load_tokenizer(model_cfg):
  """The tokenizer of `config.model` (its own `tokenizer`, else the llm's; the embedded SmolLM2's by default)."""
  spec = model_cfg.tokenizer or (None if model_cfg.llm in (None, "random") else model_cfg.llm)
  return _load_tokenizer(spec)


def load_llm(model_cfg, tok=None, seed: int = 0) -> tuple[LlamaConfig, dict[str, Any]]:
  """(LlamaConfig, backbone params) with `keep_layers` applied; 'random' needs the tokenizer for its vocabulary."""
  dtype = _DTYPES[model_cfg.dtype]
  if model_cfg.llm == "random":
    if tok is None:
      raise JaxrecError("config.model.llm='random' needs the tokenizer (its vocabulary size)")
    cfg, params = random_llm(model_cfg.random_llm, tok, dtype, seed)
  else:
    cfg, params = load_pretrained(model_cfg.llm, dtype)
  return truncate_layers(cfg, params, int(model_cfg.keep_layers))


def lora_config(model_cfg) -> lora.LoraConfig | None:
  lo = model_cfg.lora
  if lo.rank == 0:
    return None
  return lora.LoraConfig(rank=int(lo.rank), alpha=float(lo.alpha), dropout=float(lo.dropout),
                         targets=tuple(lo.targets))


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
    llm: optional (LlamaConfig, params) already loaded (e.g. shared between runs); else `load_llm`.
    cf_params / cf_model: the CF subtree (and, for source 'model', the `jaxrec.cf.CFModel`); when None for a
      'tables' source they are loaded from `cf.workdir` for a dataset of n_users / n_items.
    train_users: users of the CF training split ([N] ids), for `cf.cold_users='fallback'`.
    seed: initialises adapters, mapper (and a random LLM).
  """
  validate(model_cfg)
  llm_cfg, llm_params = llm if llm is not None else load_llm(model_cfg, tokenizer, seed)
  if llm is not None:
    llm_cfg, llm_params = truncate_layers(llm_cfg, llm_params, int(model_cfg.keep_layers))
  lcfg = lora_config(model_cfg)
  decoder = make_decoder(llm_cfg, _DTYPES[model_cfg.dtype], lora_alpha=lcfg.alpha if lcfg else None,
                         lora_rank=lcfg.rank if lcfg else None, lora_dropout=lcfg.dropout if lcfg else 0.0,
                         remat=bool(model_cfg.remat))
  source = None
  if model_cfg.cf.name != "none":
    kind = cf_source.resolve_kind(model_cfg.cf.name, model_cfg.cf.source)
    if cf_params is None and kind == "model":
      raise JaxrecError(f"config.model.cf: {model_cfg.cf.name!r} runs as a model (source 'model'); the training "
                        f"task must restore it from {model_cfg.cf.workdir} and pass it")
    if cf_params is None:
      cf_params = load_cf_params(model_cfg, n_users, n_items, train_users)
    source = cf_source.make_source(model_cfg.cf, cf_params, cf_model)
  model = LLMRec(decoder=decoder, answer_ids=answer_token_ids(tokenizer, template, tuple(model_cfg.answers)),
                 head=model_cfg.head, proj_token_num=int(model_cfg.proj_token_num), cf=source,
                 fece_hidden_factor=int(model_cfg.fece.hidden_factor))
  params = model.init(jax.random.fold_in(jax.random.PRNGKey(seed), 1), llm_params, lcfg, cf_params)
  return model, params
