"""LLM recommenders: TALLRec and CoLLM-FaissRet (a frozen CF model's vectors, mapped into ID-slot embeddings).

  model, params = build(config.model, tokenizer=tok, template=template, n_users=..., n_items=...)
  loss_fn = make_loss_fn(model)     # (trainable, frozen, batch, rng) -> (loss, aux), for the train loop
  score_fn = make_score_fn(model)   # (params, batch) -> [B] P(Yes), for evaluation

Modules: `config` (the config.model schema), `fece` (mapper and slot replacement), `cf_source` (CF vectors and the
user fallback), `llmrec` (the model and its heads), `builder` (config → model + params). Imports data, llm and cf;
never train or evaluate.
"""

from jaxrec.models.builder import build
from jaxrec.models.config import model_config, prompt_settings, tallrec_config, validate
from jaxrec.models.llmrec import LLMRec, answer_token_ids, make_loss_fn, make_score_fn

__all__ = [
    "LLMRec", "answer_token_ids", "build", "make_loss_fn", "make_score_fn", "model_config", "prompt_settings",
    "tallrec_config", "validate",
]
