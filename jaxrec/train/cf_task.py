"""Training and evaluating the CF baselines (config.model.family == 'cf') with the generic loop and evaluator.

  train(config, workdir)      trains every stage, then evaluates the best parameters on config.eval.final_splits:
                              workdir/metrics.json, a printed table, and workdir/embeddings/{item,user}.npy
  evaluate(workdir, split)    re-creates the model of a finished run and evaluates it on a split name or file

The config: seed, data (a `jaxrec.data` config, or name='synthetic' with `jaxrec.cf.synthetic.make_dataset`
arguments), model (family, name, loss, n_negatives and the fields in `jaxrec.cf.MODEL_FIELDS`), batch_size,
eval_batch_size, log_every, checkpoint_every, stages (see `jaxrec.train.config`), eval (kind 'ctr' | 'topk', split
used for early stopping, final_splits, ks, users: -1 = every user, n = the n users a multi-scale run with the same
seed samples, `jaxrec.evaluate.sample_eval_users`).
"""

from __future__ import annotations

import pathlib

import jax
import ml_collections
import numpy as np

from jaxrec import cf, evaluate as ev
from jaxrec.cf import synthetic
from jaxrec.data import schema
from jaxrec.errors import JaxrecError
from jaxrec.paths import atomic_dir
from jaxrec.train import loop, results as run_results, workdir as run_dir
from jaxrec.train.batches import ArrayBatcher
from jaxrec.train.config import validate_loop_config
from jaxrec.tree import merge

CTR_METRICS = ("auc", "uauc", "gauc")
TOPK_METRICS = ("precision", "recall", "ndcg", "hit", "coverage")


def validate(config) -> None:
  """One-line JaxrecError for an impossible value anywhere in a CF config."""
  validate_loop_config(config)
  m = config.model
  if m.name not in cf.MODELS:
    raise JaxrecError(f"config.model.name: expected one of {sorted(cf.MODELS)}, got {m.name!r}")
  if m.get("loss", "bce") not in cf.LOSSES:
    raise JaxrecError(f"config.model.loss: expected one of {list(cf.LOSSES)}, got {m.loss!r}")
  for field in ("embed_dim", "num_layers", "num_heads", "n_negatives"):
    if field in m and not (isinstance(m[field], int) and m[field] >= 1):
      raise JaxrecError(f"config.model.{field}: expected an integer >= 1, got {m[field]!r}")
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
  names = ([f"{g}{x}" for g in ("", "warm/", "cold/") for x in CTR_METRICS] if kind == "ctr" else
           [f"{x}@{k}" for x in TOPK_METRICS for k in config.eval.ks])
  for i, stage in enumerate(config.stages):
    if stage.early_stopping.metric not in names:
      raise JaxrecError(f"config.stages[{i}].early_stopping.metric: expected one of {names}, got "
                        f"{stage.early_stopping.metric!r}")


def load_data(data_cfg):
  if data_cfg.name == "synthetic":
    return synthetic.make_dataset(**{k: v for k, v in data_cfg.items() if k != "name"})
  from jaxrec import data  # the data layer is only needed for real datasets
  return data.load_dataset(data_cfg)


def _split(dataset, name: str):
  if name not in dataset.splits:
    raise JaxrecError(f"config.eval: split {name!r} not in the dataset; available: {', '.join(dataset.splits)}")
  return dataset.splits[name]


def build(config):
  """(dataset, model, init_params), deterministic in config (so `evaluate` rebuilds what `train` trained)."""
  dataset = load_data(config.data)
  if int(config.eval.get("users", -1)) > 0:  # the same sampled users as a multi-scale run with this seed
    dataset.splits.update(ev.sample_eval_splits(dataset.splits, int(config.eval.users), int(config.seed)))
  model_cfg = ml_collections.ConfigDict(config.model.to_dict())
  if "max_len" in model_cfg and model_cfg.max_len <= 0:  # default: the data's history length
    model_cfg.max_len = int(dataset.splits["train"].history.shape[1])
  model = cf.build_model(model_cfg, dataset.n_users, dataset.n_items, dataset.splits["train"])
  return dataset, model, model.init(jax.random.PRNGKey(int(config.seed)))


def make_evaluator(config, dataset, model):
  """params, split → metrics dict, for the config's eval kind (jitted scoring compiled once per batch shape)."""
  bs = int(config.get("eval_batch_size", 4096))
  if config.eval.kind == "ctr":
    logits = jax.jit(model.logits)
    return lambda params, split: ev.evaluate_ctr(lambda b: logits(params, b), split, bs)
  score_all = jax.jit(model.score_all)
  masked = schema.seen_items(dataset)
  return lambda params, split: ev.evaluate_topk(lambda b: score_all(params, b), split, masked,
                                                dataset.n_items, tuple(config.eval.ks), min(bs, 256))


def train(config, workdir, progress: bool = True) -> dict:
  """Trains, evaluates the best parameters on config.eval.final_splits and exports the embeddings."""
  validate(config)
  workdir = pathlib.Path(workdir)
  dataset, model, init = build(config)  # every input read and checked before the workdir is touched
  valid = _split(dataset, config.eval.split)
  with run_dir.claim(workdir):  # loop.train refuses a workdir of another config before writing in it
    return _train(config, workdir, dataset, model, init, valid, progress)


def _train(config, workdir: pathlib.Path, dataset, model, init, valid, progress: bool) -> dict:
  evaluator = make_evaluator(config, dataset, model)
  train_arrays = ev.split_arrays(dataset.splits["train"])
  result = loop.train(
      config, workdir, init_params=init,
      loss_fn=lambda trainable, frozen, batch, rng: model.loss_fn(merge(trainable, frozen), batch, rng),
      evaluate_fn=lambda params: evaluator(params, valid),
      train_data=ArrayBatcher(train_arrays, int(config.batch_size), int(config.seed)), progress=progress)
  results = {name: evaluator(result.params, dataset.splits[name])
             for name in config.eval.final_splits if name in dataset.splits}
  ev.write_metrics(workdir / "metrics.json", {"splits": results, "stages": result.stages})
  print(ev.format_table(results), flush=True)
  export_embeddings(model, result.params, workdir / "embeddings")
  run_results.write_cf_results_md(workdir / "results.md", config, results, result.stages,
                                  run_results.pictures(workdir, config, results, result.stages))
  return results


def export_embeddings(model, params, folder: pathlib.Path) -> None:
  """item.npy [n_items + 1, D] and, for id models, user.npy [n_users + 1, D]; row 0 is padding (zeros)."""
  with atomic_dir(folder) as tmp:
    for name, array in model.export_embeddings(params).items():
      np.save(tmp / f"{name}.npy", array)


def split_from_file(config, path: pathlib.Path):
  if config.data.name == "ml1m_collm" and path.suffix == ".parquet":
    from jaxrec.data import ml1m_collm  # a CoLLM-format parquet, read as the dataset's own splits are
    return ml1m_collm._read_parquet(path, int(config.data.max_history))[0]  # pylint: disable=protected-access
  raise JaxrecError(f"--split={path}: reading split files of dataset {config.data.name!r} is not supported; "
                    f"pass a split name instead")


def _evaluate_ctr_file_safe(config, dataset, model, params, split) -> dict:
  """CTR metrics on a split that may hold ids the model never had (e.g. a test file's new items).

  Unknown users become user 0 (no id: zero embedding), unknown history items are dropped (padding), and rows whose
  target item is unknown get the neutral logit 0, since no trained model can rank them.
  """
  arrays = ev.split_arrays(split)
  unknown_item = arrays["item"] > dataset.n_items
  arrays["user"] = np.where(arrays["user"] > dataset.n_users, 0, arrays["user"])
  arrays["history"] = np.where(arrays["history"] > dataset.n_items, 0, arrays["history"])
  arrays["item"] = np.where(unknown_item, 1, arrays["item"])
  logits = jax.jit(model.logits)
  scores = ev.collect_scores(lambda b: logits(params, b), arrays, int(config.get("eval_batch_size", 4096)))
  scores[unknown_item] = 0.0
  out = ev.ctr_metrics(split.user, split.label, scores, getattr(split, "warm", None))
  out["unknown_items"] = int(unknown_item.sum())
  return out


def evaluate(workdir, split: str, output: str | None = None) -> dict:
  """Evaluates a finished run's best parameters on `split` (a split name or a file in the dataset's format)."""
  config = run_dir.read_config(workdir)
  dataset, model, init = build(config)
  with run_dir.claim(workdir, shared=True):  # not while a run trains it
    return _evaluate(config, workdir, dataset, model, init, split, output)


def _evaluate(config, workdir, dataset, model, init, split: str, output: str | None) -> dict:
  params = loop.restore_params(config, workdir, init)
  path = pathlib.Path(split)
  if split in dataset.splits:
    name, sp = split, dataset.splits[split]
  elif path.is_file():
    name, sp = path.stem, split_from_file(config, path)
  else:
    raise JaxrecError(f"--split={split}: neither a split of {config.data.name} ({', '.join(dataset.splits)}) nor "
                      f"a file")
  if config.eval.kind == "ctr":
    results = {name: _evaluate_ctr_file_safe(config, dataset, model, params, sp)}
  else:
    results = {name: make_evaluator(config, dataset, model)(params, sp)}
  out = pathlib.Path(output) if output else pathlib.Path(workdir) / "eval" / f"{name}.json"
  ev.write_metrics(out, {"splits": results, "source": str(split)})
  print(ev.format_table(results), flush=True)
  print(f"wrote {out}", flush=True)
  return results
