"""The LLM as a pair scorer for re-ranking: P("Yes") of "will this user enjoy <candidate>?" from `jaxrec.models`.

  scorer = make_llm_scorer("smollm2", run)   # zero-shot TALLRec on the embedded SmolLM2-135M
  scorer({'user': [M], 'item': [M], 'history': [M, H], 'history_label': [M, H]}) -> [M] P(Yes)

Specs: 'random' (a tiny random decoder over SmolLM2's tokenizer: tests and smoke runs), 'smollm2' (the embedded
SmolLM2-135M), or any `config.model.llm` value (a .gguf path, a HF directory or hub id), each as zero-shot TALLRec:
a text-only prompt with the user's liked titles and the candidate's title, and LoRA B = 0, i.e. the base LLM.
Each pair is rendered with the run's data settings (history length in the prompt, quoting) and a TALLRec template
for the dataset's domain; prompts are left-padded to a multiple of `pad_multiple` so a few shapes are compiled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxrec.data import prompts, schema
from jaxrec.data.config import get_data_config
from jaxrec.errors import JaxrecError
from jaxrec.models import prefix as prefix_lib

_PROMPT_FIELDS = ("prompt_history", "quote_titles", "empty_history_text", "proj_token_num", "pad_multiple")


def prompt_fields(data_cfg) -> dict[str, Any]:
  """The prompt settings of a data config; a synthetic dataset's config has none, so ML-1M's defaults fill in."""
  defaults = get_data_config("ml1m_collm")
  return {f: (data_cfg.get(f, defaults[f]) if data_cfg is not None else defaults[f]) for f in _PROMPT_FIELDS}


def domain_template(data_name: str) -> str:
  """The TALLRec template name for a dataset's items (books or movies)."""
  return "tallrec_book_collm" if "book" in (data_name or "") else "tallrec_movie"


class LLMScorer:
  """Renders (user history, candidate) pairs into prompts and scores them with a jitted `make_score_fn`."""

  batches_itself = True  # `retrieval.score_candidates` hands it one user's candidates at a time

  def __init__(self, model, params, tok, template: str, item_text, data_cfg=None):
    from jaxrec.models.scoring import PYesScorer

    self.model, self.params, self.tok, self.template = model, params, tok, template
    self.item_text = list(item_text)
    self.fields = prompt_fields(data_cfg)
    self.scorer = PYesScorer(model)
    self.pad_id = prompts.pad_token_id(tok)

  def _split(self, pairs: Mapping[str, np.ndarray]):
    """(the pairs as a `schema.Split`, their row fields) for prompt rendering and the CF source."""
    item = np.asarray(pairs["item"], np.int64)  # [M]
    m = len(item)
    history = np.asarray(pairs["history"], np.int64)  # [M, H]
    labels = pairs.get("history_label")
    labels = np.where(history != 0, 1, -1).astype(np.int8) if labels is None else np.asarray(labels, np.int8)
    user = np.asarray(pairs.get("user", np.zeros(m, np.int64)), np.int64)
    split = schema.Split(user=user, item=item, label=np.zeros(m, np.float32), timestamp=np.full(m, -1, np.int64),
                         history=history, history_len=(history != 0).sum(1).astype(np.int32),
                         history_label=labels, warm=np.ones(m, bool))
    return split, dict(user=user, item=item, history=history, history_label=labels, label=np.zeros(m, np.float32))

  def encodings(self, pairs: Mapping[str, np.ndarray]) -> tuple[list[dict], dict[str, np.ndarray]]:
    """(unpadded prompt encodings, row fields) of `pairs` (see `prompts.tokenize`)."""
    split, fields = self._split(pairs)
    f = self.fields
    texts = prompts.render(self.template, split, self.item_text, range(len(split.item)),
                           int(f["prompt_history"]), bool(f["quote_titles"]), f["empty_history_text"])
    return prompts.tokenize(texts, self.tok, int(f["proj_token_num"])), fields

  def encode(self, pairs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model batch of `pairs`: input_ids / attention_mask [M, T], slot positions, user / item / history."""
    encodings, fields = self.encodings(pairs)
    batch = prompts.pad_left(encodings, self.pad_id, int(self.fields["pad_multiple"]))
    batch.update(fields)
    return batch

  def __call__(self, pairs: Mapping[str, np.ndarray], batch_size: int | None = None,
               progress: bool = False, shared: bool = True) -> np.ndarray:
    """[M] P(Yes) of the pairs: one batch of all of them (a user's candidates), or batches of `batch_size`.
    `shared`: pairs of one user and history run their common prompt prefix once (`jaxrec.models.prefix`)."""
    m = len(pairs["item"])
    if shared:
      encodings, fields = self.encodings(pairs)
      one_group = len(np.unique(prefix_lib.group_rows(fields))) == 1
      if one_group and self.model.cf is None and batch_size is None:
        # one user's candidates, text only: the prefix once, the suffixes packed several to a row
        return self.scorer.packed(self.params, encodings, self.pad_id, int(self.fields["pad_multiple"]))
      return self.scorer.shared(self.params, encodings, fields, self.pad_id, int(self.fields["pad_multiple"]),
                                progress=progress, batch_size=batch_size)
    take = lambda rows: {k: np.asarray(v)[rows] for k, v in pairs.items()}  # noqa: E731
    return self.scorer(self.params, m, lambda rows: self.encode(take(rows)), batch_size=batch_size,
                       progress=progress)


def trained_llm_scorer(workdir, n_items: int) -> LLMScorer:
  """The scorer of a finished LLM-recommender run (launch/train.py with an `llmrec` config): its best params,
  tokenizer, template and data settings; its catalogue must be the CF run's (`n_items`)."""
  from jaxrec import models
  from jaxrec.train import llm_task, loop, workdir as workdir_lib

  config = workdir_lib.read_config(workdir)
  runner = llm_task.Runner(config)
  if runner.dataset.n_items != n_items:
    raise JaxrecError(f"--llm={workdir}: its dataset has {runner.dataset.n_items} items, the CF run's has {n_items}")
  params = runner.scoring_params(loop.restore_params(config, workdir, runner.params))
  template, _ = models.prompt_settings(config.model, config.data)
  # the run's scoring model (config.eval_dtype), so re-ranking scores equal the run's own evaluation
  return LLMScorer(runner.scorer.model, params, runner.tok, template, runner.dataset.item_text, config.data)


def text_template(data_cfg, data_name: str = "") -> str:
  """The template name zero-shot TALLRec scores a dataset with: its own when it has no ID slots (BookCrossing's
  Alpaca prompt), else the text-only TALLRec prompt of its domain."""
  own = data_cfg.get("template") if data_cfg is not None else None
  if own and "<UserID>" not in own and "<TargetItemID>" not in own:
    name = next((k for k, v in prompts.TEMPLATES.items() if v == own), None)
    if name is not None:
      return name
  return domain_template(data_name)


def make_llm_scorer(spec: str, item_text, data_cfg=None, data_name: str = "", keep_layers: int = -1,
                    seed: int = 0, template: str | None = None) -> LLMScorer:
  """A scorer for `spec`: a trained LLM-recommender workdir, or zero-shot TALLRec on 'random', 'smollm2' or a
  config.model.llm value (with `template`, a TEMPLATES name; default: the domain's TALLRec prompt)."""
  import json
  import pathlib

  from jaxrec.data.prompts import TEMPLATES
  from jaxrec.llm import backbone
  from jaxrec.models import builder, tallrec_config

  if not spec:
    raise JaxrecError("--llm: expected a trained LLM run's workdir, 'random', 'smollm2', a .gguf path or a HF "
                      "model directory")
  run_config = pathlib.Path(spec) / "config.json"
  if run_config.is_file() and json.loads(run_config.read_text()).get("model", {}).get("family") == "llmrec":
    return trained_llm_scorer(spec, len(item_text) - 1)
  llm = None if spec == "smollm2" else spec
  cfg = tallrec_config(llm=llm, keep_layers=int(keep_layers), template=template or domain_template(data_name))
  tok = backbone.load_tokenizer(cfg)
  template = TEMPLATES[cfg.template]
  model, params = builder.build(cfg, tokenizer=tok, template=template, seed=seed)
  return LLMScorer(model, params, tok, template, item_text, data_cfg)
