"""The CF baselines (config.model.family == 'cf') as a family of the task protocol (`jaxrec.train.task`): what
differs from the other families is only here: data, model, loss, the CTR or top-K evaluator, the embedding export.

The config: seed, data (a `jaxrec.data` config, or name='synthetic' with `jaxrec.cf.synthetic.make_dataset`
arguments), model (family, name, loss, n_negatives and the fields in `jaxrec.cf.MODEL_FIELDS`), batch_size,
eval_batch_size, log_every, checkpoint_every, stages (see `jaxrec.train.config`), eval (kind 'ctr' | 'topk', split
used for early stopping, final_splits, ks, users: -1 = every user, n = the n users a multi-scale run with the same
seed samples, `jaxrec.evaluate.sample_eval_users`). Exports workdir/embeddings/{item,user}.npy.
"""

from __future__ import annotations

import pathlib

import jax
import ml_collections
import numpy as np

from jaxrec import cf, evaluate as ev
from jaxrec.cf import synthetic
from jaxrec.data import schema
from jaxrec.data.sampling import validation_sample
from jaxrec.errors import JaxrecError
from jaxrec.paths import atomic_dir
from jaxrec.train import loop, results as run_results, workdir as run_dir
from jaxrec.train.batches import ArrayBatcher
from jaxrec.train.config import validate_early_stopping, validate_loop_config
from jaxrec.train.task import Built
from jaxrec.tree import merge



def validate(config) -> None:
  """One-line JaxrecError for an impossible value anywhere in a CF config."""
  m = config.model
  if m.get("name") not in cf.MODELS:
    raise JaxrecError(f"config.model.name: expected one of {sorted(cf.MODELS)}, got {m.get('name')!r}")
  closed = m.name in cf.CLOSED_FORM
  validate_loop_config(config, min_stages=0 if closed else 1)
  if closed and len(config.stages):
    raise JaxrecError(f"config.stages: {m.name} is fitted in closed form; expected no stages, got "
                      f"{len(config.stages)}")
  if m.get("loss", "bce") not in cf.LOSSES:
    raise JaxrecError(f"config.model.loss: expected one of {list(cf.LOSSES)}, got {m.loss!r}")
  for field in ("embed_dim", "num_layers", "num_heads", "neighbours", "text_rank"):
    if field in m and not (isinstance(m[field], int) and m[field] >= 1):
      raise JaxrecError(f"config.model.{field}: expected an integer >= 1, got {m[field]!r}")
  if m.name in cf.TEXT_MODELS:
    if "text" not in m:
      raise JaxrecError(f"config.model.text: {m.name!r} needs the text section "
                        "(`jaxrec.train.text_features.text_config`)")
    heads, dim = m.get("heads", 8), m.get("embed_dim", 128)
    if not (isinstance(heads, int) and heads >= 1 and dim % heads == 0):
      raise JaxrecError(f"config.model.heads: expected an integer >= 1 dividing embed_dim {dim}, got {heads!r}")
  n_neg = m.get("n_negatives", 1)
  if not (isinstance(n_neg, int) and (n_neg >= 1 or n_neg == cf.FULL_CATALOGUE)):
    raise JaxrecError(f"config.model.n_negatives: expected an integer >= 1 (or -1: softmax over the whole "
                      f"catalogue), got {n_neg!r}")
  for field in ("l2", "shrink", "reg"):
    if field in m and not (isinstance(m[field], (int, float)) and m[field] >= 0):
      raise JaxrecError(f"config.model.{field}: expected a number >= 0, got {m[field]!r}")
  if "dropout" in m and not 0 <= m.dropout < 1:
    raise JaxrecError(f"config.model.dropout: expected a value in [0, 1), got {m.dropout!r}")
  kind = config.eval.kind
  users = config.eval.get("users", -1)
  if not (isinstance(users, int) and (users == -1 or users >= 1)):
    raise JaxrecError(f"config.eval.users: expected -1 (all) or a number of users >= 1, got {users!r}")
  if kind not in ("ctr", "topk"):
    raise JaxrecError(f"config.eval.kind: expected 'ctr' or 'topk', got {kind!r}")
  if kind == "ctr" and m.get("loss", "bce") != "bce":
    raise JaxrecError(f"config.model.loss: CTR data (eval.kind='ctr') trains with 'bce', got {m.loss!r}")
  validate_early_stopping(config.stages, ev.metric_names(kind, config.eval.ks))


def load_data(data_cfg):
  if data_cfg.name == "synthetic":
    return synthetic.make_dataset(**{k: v for k, v in data_cfg.items() if k != "name"})
  from jaxrec import data  # the data layer is only needed for real datasets
  return data.load_dataset(data_cfg)


def _split(dataset, name: str):
  if name not in dataset.splits:
    raise JaxrecError(f"config.eval: split {name!r} not in the dataset; available: {', '.join(dataset.splits)}")
  return dataset.splits[name]


def load(config, workdir=None):
  """The dataset (eval users sampled when config.eval.users > 0), before the workdir is touched."""
  del workdir
  dataset = load_data(config.data)
  if int(config.eval.get("users", -1)) > 0:  # the same sampled users as a multi-scale run with this seed
    dataset.splits.update(ev.sample_eval_splits(dataset.splits, int(config.eval.users), int(config.seed)))
  _split(dataset, config.eval.split)
  return dataset


def build_model(config, dataset=None):
  """(dataset, model, init_params), deterministic in config (so a finished run rebuilds what it trained)."""
  dataset = load(config) if dataset is None else dataset
  model_cfg = ml_collections.ConfigDict(config.model.to_dict())
  if "max_len" in model_cfg and model_cfg.max_len <= 0:  # default: the data's history length
    model_cfg.max_len = int(dataset.splits["train"].history.shape[1])
  item_text = None
  if model_cfg.name in cf.TEXT_MODELS:  # the items' multi-scale text encodings, one decoder pass over the catalogue
    from jaxrec.train import text_features

    item_text = text_features.item_scale_features(config.model.text, dataset, int(config.seed))
  model = cf.build_model(model_cfg, dataset.n_users, dataset.n_items, dataset.splits["train"], item_text)
  return dataset, model, model.init(jax.random.PRNGKey(int(config.seed)))


def make_evaluator(config, dataset, model):
  """(params, split, final=False) → metrics dict, for the config's eval kind (jitted scoring compiled once per batch
  shape); a final evaluation adds the CTR metrics' bootstrap intervals, or the per-user top-K terms."""
  bs = int(config.get("eval_batch_size", 4096))
  if config.eval.kind == "ctr":
    logits = jax.jit(model.logits)
    return lambda params, split, final=False: ev.evaluate_ctr(lambda b: logits(params, b), split, bs, final)
  score_all = jax.jit(model.score_all)
  masked = schema.seen_items(dataset)
  return lambda params, split, final=False: ev.evaluate_topk(
      lambda b: score_all(params, b), split, masked, dataset.n_items, tuple(config.eval.ks), min(bs, 256), final)


def prepare(config, workdir, dataset, progress: bool) -> None:
  del config, workdir, dataset, progress  # nothing to do before training


def build(config, dataset, progress: bool = True) -> Built:
  del progress  # CF evaluation takes seconds
  dataset, model, init = build_model(config, dataset)
  evaluator = make_evaluator(config, dataset, model)
  batcher = ArrayBatcher(ev.split_arrays(dataset.splits["train"]), int(config.batch_size), int(config.seed))
  valid = validation_sample(config.data, dataset.splits[config.eval.split])  # early stopping's rows
  return Built(
      dataset=dataset, params=init,
      loss_fn=lambda trainable, frozen, batch, rng: model.loss_fn(merge(trainable, frozen), batch, rng),
      stage_inputs=lambda stage: (batcher, lambda params: evaluator(params, valid)),
      evaluate=lambda params, name, split: evaluator(params, split, final=True),
      evaluate_any=(lambda params, name, split: _evaluate_ctr_file_safe(config, dataset, model, params, split))
      if config.eval.kind == "ctr" else None,
      export=lambda params, workdir: export_embeddings(model, params, workdir / "embeddings"))


def write_results(path, config, record, picture_lines) -> None:
  run_results.write_cf_results_md(path, config, record["splits"], record["stages"], picture_lines)


def export_embeddings(model, params, folder: pathlib.Path) -> None:
  """item.npy [n_items + 1, D] and, for id models, user.npy [n_users + 1, D]; row 0 is padding (zeros)."""
  with atomic_dir(folder) as tmp:
    for name, array in model.export_embeddings(params).items():
      np.save(tmp / f"{name}.npy", array)


def split_from_file(config, path: pathlib.Path, dataset):
  from jaxrec import data  # the data layer is only needed for real datasets

  return data.load_split_file(config.data, path, dataset)


def _evaluate_ctr_file_safe(config, dataset, model, params, split) -> dict:
  """CTR metrics (and per-row scores) of `ctr_scores` on a split that may hold ids the model never had."""
  scores, unknown_item = ctr_scores(config, dataset, model, params, split)
  out = ev.ctr_metrics(split.user, split.label, scores, getattr(split, "warm", None), intervals=True)
  out["unknown_items"] = int(unknown_item.sum())
  out[ev.PER_ROW] = ev.per_row_scores(split, scores)
  return out


def ctr_scores(config, dataset, model, params, split) -> tuple[np.ndarray, np.ndarray]:
  """([N] logits, [N] unknown-item flags) of a split that may hold ids the model never had (e.g. a test file's new
  items) or longer histories than it was trained on (an LLM run's split: its own max_history).

  Unknown users become user 0 (no id: zero embedding), unknown history items are dropped (padding), histories keep
  their most recent `max_len` items (the model's training width), and rows whose target item is unknown get the
  neutral logit 0, since no trained model can rank them.
  """
  arrays = ev.split_arrays(split)
  width = int(dataset.splits["train"].history.shape[1])
  if arrays["history"].shape[1] > width:  # left-padded, most recent last: keep the last `width`
    arrays["history"] = arrays["history"][:, -width:]
    arrays["history_len"] = np.minimum(arrays["history_len"], width)
  unknown_item = arrays["item"] > dataset.n_items
  arrays["user"] = np.where(arrays["user"] > dataset.n_users, 0, arrays["user"])
  arrays["history"] = np.where(arrays["history"] > dataset.n_items, 0, arrays["history"])
  arrays["item"] = np.where(unknown_item, 1, arrays["item"])
  logits = jax.jit(model.logits)
  scores = ev.collect_scores(lambda b: logits(params, b), arrays, int(config.get("eval_batch_size", 4096)))
  scores[unknown_item] = 0.0
  return scores, unknown_item


def row_scorer(cf_workdir):
  """split → [N] logits of a finished CTR run (its best parameters) on the rows of `split`, a Split of the same
  dataset (an LLM run's final splits: its comparison with the CF model it builds on, on identical rows). The run is
  rebuilt and restored once, here; the returned function only scores."""
  cf_config = run_dir.read_config(cf_workdir)
  dataset, model, init = build_model(cf_config)
  params = loop.restore_params(cf_config, cf_workdir, init)
  return lambda split: ctr_scores(cf_config, dataset, model, params, split)[0]
