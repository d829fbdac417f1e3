"""Training and evaluating the multi-scale LoRA recommender (config.model.family == 'multiscale').

  train(config, workdir)      trains every stage with the generic loop (early stopping on validation top-K), then
                              evaluates the best parameters on config.eval.final_splits: workdir/metrics.json, a
                              printed table, workdir/results.md, workdir/embeddings/item.npy (for Faiss)
  evaluate(workdir, split)    rebuilds the model of a finished run and evaluates it on a split name
  report(workdir, baselines)  rewrites workdir/results.md from its metrics.json, with CF baseline runs finished since

Top-K evaluation is `jaxrec.evaluate.evaluate_topk`: full catalogue, the user's training items masked, one query per
user (its earliest row of the split, whose history precedes the held-out period). Item vectors are computed once per
evaluation. Training rows are the train split's positives; each batch carries B history texts, their B target items'
texts and N random items' texts (seeded by (seed, epoch, batch), so a resumed run sees the same negatives).

CPU budget knobs: config.budget.train_users / eval_users (users sampled, seeded; -1 = all), rows_per_user (each
sampled user's most recent train rows; -1 = all); config.model.user.max_history (history items in the text);
config.model.keep_layers (decoder layers kept).
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxrec import evaluate as ev
from jaxrec.data import schema
from jaxrec.errors import JaxrecError
from jaxrec.models import multiscale as MS
from jaxrec.multiscale import text as T
from jaxrec.paths import atomic_dir
from jaxrec.train import loop, results as run_results, workdir as run_dir
from jaxrec.train.config import validate_loop_config
from jaxrec.train.multiscale_report import write_results

TOPK_METRICS = ("precision", "recall", "ndcg", "hit", "coverage")


def validate(config) -> None:
  validate_loop_config(config)
  names = [f"{x}@{k}" for x in TOPK_METRICS for k in config.eval.ks]
  for i, stage in enumerate(config.stages):
    if stage.early_stopping.metric not in names:
      raise JaxrecError(f"config.stages[{i}].early_stopping.metric: expected one of {names}, got "
                        f"{stage.early_stopping.metric!r}")


def _sample_users(users: np.ndarray, n: int, seed: int) -> np.ndarray:
  users = np.unique(users[users > 0])
  if n < 0 or n >= len(users):
    return users
  return np.sort(np.random.default_rng(seed).choice(users, n, replace=False))


def load_data(config):
  """The dataset with the budget applied: train = sampled users' positive rows; eval splits = sampled users'."""
  from jaxrec import data
  ds = data.load_dataset(config.data)
  b, seed = config.budget, int(config.seed)
  tr = ds.splits["train"]
  keep = tr.label > 0.5
  users = _sample_users(tr.user[keep], int(b.train_users), seed)
  rows = np.flatnonzero(keep & np.isin(tr.user, users))
  if int(b.rows_per_user) > 0:  # each user's most recent rows (longest histories)
    order = rows[np.lexsort((rows, tr.timestamp[rows], tr.user[rows]))]  # by user, time, row
    rank_from_end = np.zeros(len(order), np.int64)
    _, start, counts = np.unique(tr.user[order], return_index=True, return_counts=True)
    for s, c in zip(start, counts):
      rank_from_end[s:s + c] = np.arange(c)[::-1]
    rows = np.sort(order[rank_from_end < int(b.rows_per_user)])
  if not len(rows):
    raise JaxrecError("config.budget: no training rows left (check train_users / rows_per_user)")
  masked = schema.seen_items(ds)
  # Item frequencies of the whole training split (what the CF baselines see), for the popularity prior.
  ds.info["train_item_counts"] = np.bincount(tr.item[keep], minlength=ds.n_items + 1)
  ds.splits["train"] = tr.take(rows)
  ds.splits.update(ev.sample_eval_splits(ds.splits, int(b.eval_users), seed))
  ds.train_items_by_user = masked
  return ds


def build(config, llm=None):
  """(dataset, model, init_params, item token table), deterministic in config."""
  dataset = load_data(config)
  model, params, tok = MS.build(config.model, dataset.n_items, llm=llm, seed=int(config.seed))
  m = config.model
  table = T.build_item_tokens(tok, dataset.item_text, dataset.item_genres, bool(m.item.with_genres),
                              int(m.item.max_tokens), m.user.prefix, m.item.prefix)
  params = fit_centers(model, params, dataset.splits["train"], table, int(m.user.max_history), int(config.seed))
  return dataset, model, params, table


def fit_centers(model, params, train, table: T.ItemTokens, max_history: int, seed: int, n: int = 128):
  """Centres (`MultiScaleRec.fit_centers`) from n seeded training histories and n seeded catalogue items: one batch
  each, so the estimate costs about one training step."""
  if not model.center:
    return params
  rng = np.random.default_rng([seed, 11])
  rows = rng.choice(len(train), min(n, len(train)), replace=False)
  users = T.encode_histories(table, train.history[rows, -max_history:], table.user_length(max_history))
  items = T.encode_items(table, rng.choice(np.arange(1, model.n_items + 1), min(n, model.n_items), replace=False))
  return model.fit_centers(params, users, items)


class TextBatcher:
  """Shuffled training batches of tokenized history / target / negative texts (the loop's `train_data`)."""

  def __init__(self, split, table: T.ItemTokens, n_items: int, batch_size: int, n_negatives: int, max_history: int,
               seed: int):
    self.split, self.table, self.n_items = split, table, n_items
    self.batch_size, self.n_negatives, self.max_history, self.seed = min(batch_size, len(split)), n_negatives, \
        max_history, seed
    self.length = table.user_length(max_history)
    self.steps_per_epoch = len(split) // self.batch_size

  def make_batch(self, rows: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    sp = self.split
    batch = {"user": sp.user[rows], "pos_item": sp.item[rows]}
    batch.update(T.encode_histories(self.table, sp.history[rows, -self.max_history:], self.length))
    neg = rng.integers(1, self.n_items + 1, max(self.n_negatives, 1))[:self.n_negatives]
    batch.update({f"pos_{k}": v for k, v in T.encode_items(self.table, sp.item[rows]).items()})
    batch.update({f"neg_{k}": v for k, v in T.encode_items(self.table, neg).items()})
    batch["neg_item"] = neg.astype(np.int64)
    return batch

  def batches(self, epoch: int, start: int = 0):
    order = np.random.default_rng([self.seed, epoch]).permutation(len(self.split))
    for b in range(start, self.steps_per_epoch):
      rows = order[b * self.batch_size:(b + 1) * self.batch_size]
      yield self.make_batch(rows, np.random.default_rng([self.seed, epoch, b, 1]))


def make_item_table(model, table: T.ItemTokens, chunk: int = 256):
  """params → [n_items + 1, d] item vectors (row 0 = padding, zeros), one compiled chunk shape."""
  encode = jax.jit(lambda params, ids, mask, seg, items: model.encode_items(params, ids, mask, seg, items))
  ids = np.arange(1, model.n_items + 1)
  chunk = min(chunk, len(ids))
  pad = (-len(ids)) % chunk
  ids = np.concatenate([ids, np.ones(pad, np.int64)])

  def item_table(params):
    out = []
    for lo in range(0, len(ids), chunk):
      enc = T.encode_items(table, ids[lo:lo + chunk])
      out.append(np.asarray(encode(params, enc["input_ids"], enc["attention_mask"], enc["segment"],
                                   ids[lo:lo + chunk])))
    v = np.concatenate(out)[:model.n_items]
    return np.concatenate([np.zeros((1, v.shape[1]), v.dtype), v])

  return item_table


def _fingerprint(params) -> str:
  """Digest of every leaf but the frozen backbone's (adapters, heads, centres: small), to reuse an item table."""
  h = hashlib.sha1()
  for path, leaf in jax.tree_util.tree_leaves_with_path({k: v for k, v in params.items() if k != "llm"}):
    h.update(jax.tree_util.keystr(path).encode())
    h.update(np.asarray(leaf).tobytes())
  return h.hexdigest()


def make_evaluator(config, dataset, model, table):
  """(params, split[, return_items]) → top-K metrics (and the item vectors used). The item table, the costliest
  part (every item text through the decoder), is reused while the trainable params are unchanged: the final
  evaluation of the best params usually repeats the last validation's."""
  compute_items = make_item_table(model, table, int(config.get("eval_item_chunk", 256)))
  cache: dict[str, np.ndarray] = {}

  def item_table(params):
    key = _fingerprint(params)
    if key not in cache:
      cache.clear()
      cache[key] = compute_items(params)
    return cache[key]

  score = jax.jit(model.score_all)
  h = int(config.model.user.max_history)
  length = table.user_length(h)
  masked = dataset.train_items_by_user
  prior = jnp.asarray(log_prior(dataset.info["train_item_counts"]))

  def evaluator(params, split, return_items: bool = False):
    items = jnp.asarray(item_table(params))

    def score_all_batch(batch):
      enc = T.encode_histories(table, batch["history"][:, -h:], length)
      return score(params, enc, items, prior)

    out = ev.evaluate_topk(score_all_batch, split, masked, dataset.n_items, tuple(config.eval.ks),
                           int(config.get("eval_batch_size", 64)))
    return (out, np.asarray(items)) if return_items else out

  return evaluator


def log_prior(counts: np.ndarray) -> np.ndarray:
  """[I + 1] log p̂(i), add-one smoothed item frequencies (entry 0, padding, is 0: it is masked anyway)."""
  counts = np.asarray(counts, np.float64)
  out = np.log((counts + 1.0) / (counts[1:].sum() + len(counts) - 1))
  out[0] = 0.0
  return out.astype(np.float32)


def train(config, workdir, progress: bool = True, llm=None) -> dict:
  """Trains, evaluates the best parameters on config.eval.final_splits, writes metrics, results.md and item.npy."""
  validate(config)
  workdir = pathlib.Path(workdir)
  dataset, model, init, table = build(config, llm)
  if config.eval.split not in dataset.splits:
    raise JaxrecError(f"config.eval.split: {config.eval.split!r} not in {', '.join(dataset.splits)}")
  # Every input was read and checked above; loop.train refuses a workdir of another config before writing in it.
  with run_dir.claim(workdir):
    return _train(config, workdir, dataset, model, init, table, progress)


def _train(config, workdir: pathlib.Path, dataset, model, init, table, progress: bool) -> dict:
  evaluator = make_evaluator(config, dataset, model, table)
  valid = dataset.splits[config.eval.split]
  m = config.model
  batcher = TextBatcher(dataset.splits["train"], table, dataset.n_items, int(config.batch_size),
                        int(m.loss.n_negatives), int(m.user.max_history), int(config.seed))
  result = loop.train(config, workdir, init_params=init, loss_fn=MS.make_loss_fn(model),
                      evaluate_fn=lambda params: evaluator(params, valid), train_data=batcher, progress=progress)
  results, items = {}, None
  for name in config.eval.final_splits:
    if name in dataset.splits:
      results[name], items = evaluator(result.params, dataset.splits[name], return_items=True)
  mostpop = {name: most_popular(config, dataset, dataset.splits[name]) for name in results}
  budget = budget_summary(config, dataset, model)
  ev.write_metrics(workdir / "metrics.json", {"splits": results, "stages": result.stages, "most_popular": mostpop,
                                              "budget": budget})
  print(ev.format_table(results), flush=True)
  if items is not None:
    with atomic_dir(workdir / "embeddings") as tmp:
      np.save(tmp / "item.npy", items.astype(np.float32))
  write_results(workdir / "results.md", config, results, budget, mostpop,
                run_results.pictures(workdir, config, results, result.stages))
  return results


def most_popular(config, dataset, split) -> dict:
  """The reference every top-K figure here must be read against: items ranked by training frequency alone."""
  prior = log_prior(dataset.info["train_item_counts"])
  return ev.evaluate_topk(lambda b: np.broadcast_to(prior, (len(b["user"]), len(prior))), split,
                          dataset.train_items_by_user, dataset.n_items, tuple(config.eval.ks))


def budget_summary(config, dataset, model) -> dict:
  return {"train_rows": len(dataset.splits["train"]), "train_users": int(len(np.unique(dataset.splits["train"].user))),
          "eval_users": {n: int(len(np.unique(s.user[s.label > 0.5]))) for n, s in dataset.splits.items()
                         if n != "train"},
          "layers": model.num_layers, "max_history": int(config.model.user.max_history), "scales": model.k}


def evaluate(workdir, split: str, output: str | None = None) -> dict:
  """Evaluates a finished run's best parameters on the split named `split`."""
  config = run_dir.read_config(workdir)
  dataset, model, init, table = build(config)
  if split not in dataset.splits:
    raise JaxrecError(f"--split={split}: not a split of {config.data.name} ({', '.join(dataset.splits)})")
  with run_dir.claim(workdir, shared=True):  # not while a run trains it
    params = loop.restore_params(config, workdir, init)
    results = {split: make_evaluator(config, dataset, model, table)(params, dataset.splits[split])}
  out = pathlib.Path(output) if output else pathlib.Path(workdir) / "eval" / f"{split}.json"
  ev.write_metrics(out, {"splits": results, "source": split})
  print(ev.format_table(results), flush=True)
  print(f"wrote {out}", flush=True)
  return results


def report(workdir, baselines: dict[str, str] | None = None) -> pathlib.Path:
  """Rewrites workdir/results.md from the finished run's config.json and metrics.json (nothing is recomputed), with
  `baselines` ({label: CF workdir}) in place of config.report.baselines when given."""
  workdir = pathlib.Path(workdir)
  config = run_dir.read_config(workdir)
  path = workdir / "metrics.json"
  try:
    metrics = json.loads(path.read_text())
    results, budget = metrics["splits"], metrics["budget"]
  except (OSError, KeyError, json.JSONDecodeError) as e:
    raise JaxrecError(f"{path}: expected the metrics.json of a finished multi-scale run ({e})") from None
  if "report" not in config:
    config.report = ml_collections.ConfigDict(dict(baselines={}, paper={}))
  if baselines is not None:
    config.report.baselines = dict(baselines)
  write_results(workdir / "results.md", config, results, budget, metrics.get("most_popular"),
                run_results.pictures(workdir, config, results, metrics.get("stages", [])))
  return workdir / "results.md"
