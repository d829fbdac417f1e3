"""The multi-scale LoRA recommender (config.model.family == 'multiscale') as a family of the task protocol
(`jaxrec.train.task`): one stage (adapters, coupling, pooling, fusion, heads) with early stopping on validation
top-K; metrics.json adds the most-popular reference and the budget; exports embeddings/item.npy (for Faiss).

The data side (budget sampling, the text batcher, centres, the popularity prior) is `multiscale_data`; the
evaluation side (item-table cache, top-K, most popular) is `multiscale_eval`; results.md is `multiscale_report`.
CPU budget knobs: config.budget.train_users / eval_users / rows_per_user, config.model.user.max_history,
config.model.keep_layers.
"""

from __future__ import annotations

import numpy as np
import ml_collections

from jaxrec import evaluate as ev
from jaxrec.errors import JaxrecError
from jaxrec.models import multiscale as MS
from jaxrec.multiscale import text as T
from jaxrec.paths import atomic_dir
from jaxrec.train import multiscale_data as D
from jaxrec.train.config import validate_early_stopping, validate_loop_config
from jaxrec.train.multiscale_eval import Evaluator, most_popular
from jaxrec.train.multiscale_report import write_results as _write_results
from jaxrec.train.task import Built



def validate(config) -> None:
  validate_loop_config(config)
  validate_early_stopping(config.stages, ev.metric_names("topk", config.eval.ks))


def load(config, workdir=None):
  """The dataset with the budget applied (`multiscale_data.load_data`), before the workdir is touched."""
  del workdir
  dataset = D.load_data(config)
  if config.eval.split not in dataset.splits:
    raise JaxrecError(f"config.eval.split: {config.eval.split!r} not in {', '.join(dataset.splits)}")
  return dataset


def prepare(config, workdir, dataset, progress: bool) -> None:
  del config, workdir, dataset, progress  # nothing to do before training


def build_model(config, dataset, llm=None):
  """(model, init_params, item token table), deterministic in config; `llm` reuses a loaded backbone."""
  model, params, tok = MS.build(config.model, dataset.n_items, llm=llm, seed=int(config.seed))
  m = config.model
  table = T.build_item_tokens(tok, dataset.item_text, dataset.item_genres, bool(m.item.with_genres),
                              int(m.item.max_tokens), m.user.prefix, m.item.prefix)
  params = D.fit_centers(model, params, dataset.splits["train"], table, int(m.user.max_history), int(config.seed))
  return model, params, table


def build(config, dataset, llm=None, progress: bool = True) -> Built:
  del progress
  model, init, table = build_model(config, dataset, llm)
  evaluator = Evaluator(config, dataset, model, table)
  valid = dataset.splits[config.eval.split]
  m = config.model
  batcher = D.TextBatcher(dataset.splits["train"], table, dataset.n_items, int(config.batch_size),
                          int(m.loss.n_negatives), int(m.user.max_history), int(config.seed))

  def extra(finals):
    return {"most_popular": {name: most_popular(config, dataset, dataset.splits[name]) for name in finals},
            "budget": D.budget_summary(config, dataset, model)}

  def export(params, workdir):
    if config.eval.final_splits:
      with atomic_dir(workdir / "embeddings") as tmp:
        np.save(tmp / "item.npy", evaluator.items(params).astype(np.float32))

  return Built(dataset=dataset, params=init, loss_fn=MS.make_loss_fn(model),
               stage_inputs=lambda stage: (batcher, lambda params: evaluator(params, valid)),
               evaluate=lambda params, name, split: evaluator(params, split, per_user=True), export=export,
               extra=extra)


def split_from_file(config, path, dataset):
  raise JaxrecError(f"--split={path}: a multi-scale run evaluates split names of {config.data.name}, not files")


def write_results(path, config, record, picture_lines) -> None:
  """results.md from the metrics.json record (with config.report.baselines' CF runs read from their workdirs)."""
  if "budget" not in record:
    raise JaxrecError(f"{path.parent / 'metrics.json'}: expected the metrics.json of a finished multi-scale run "
                      f"(no 'budget')")
  if "report" not in config:
    config.report = ml_collections.ConfigDict(dict(baselines={}, paper={}))
  _write_results(path, config, record["splits"], record["budget"], record.get("most_popular"), picture_lines)
