"""Training and evaluating the LLM recommenders (config.model.family == 'llmrec'): TALLRec and CoLLM-FaissRet.

  train(config, workdir)      runs config.stages with the generic loop (prompt batches through grain, sharded on
                              the mesh), then evaluates the best parameters on config.eval.final_splits and writes
                              metrics.json, results.md, the LoRA adapters in PEFT format (adapter/) and the
                              exported item embeddings (embeddings/)
  evaluate(workdir, split)    rebuilds a finished run and evaluates it on a split name or a split file

A stage may name its own prompt `template` (CoLLM's released order: LoRA on the text-only prompt, then the mapper on
the prompt with ID slots); by default every stage uses config.model.template (else config.data.template).

Config: seed, data (a `jaxrec.data` config), model (`jaxrec.models.config`), batch_size, eval_batch_size, log_every,
checkpoint_every, stages (`jaxrec.train.config`, plus `template`), mesh (data, model: device counts, -1 = the
rest), eval (split for early stopping, final_splits).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from jaxrec import evaluate as ev, models, sharding
from jaxrec.data import load_dataset, pipeline, prompts
from jaxrec.errors import JaxrecError
from jaxrec.llm import loading, lora
from jaxrec.llm.model import param_axes
from jaxrec.models import cf_source, fece
from jaxrec.paths import atomic_dir
from jaxrec.train import cf_task, loop, results, workdir as run_dir
from jaxrec.train.config import validate_loop_config

CTR_NAMES = tuple(f"{g}{m}" for g in ("", "warm/", "cold/") for m in ("auc", "uauc", "gauc"))


def validate(config) -> None:
  """One-line JaxrecError for an impossible value anywhere in an LLM-recommender config."""
  validate_loop_config(config)
  models.validate(config.model)
  models.prompt_settings(config.model, config.data)
  for i, stage in enumerate(config.stages):
    name = stage.get("template")
    if name is not None and name not in prompts.TEMPLATES:
      raise JaxrecError(f"config.stages[{i}].template: expected None or one of {sorted(prompts.TEMPLATES)}, got "
                        f"{name!r}")
    if stage.early_stopping.metric not in CTR_NAMES:
      raise JaxrecError(f"config.stages[{i}].early_stopping.metric: expected one of {list(CTR_NAMES)}, got "
                        f"{stage.early_stopping.metric!r}")
  devices = jax.device_count()
  data_axis = devices // config.mesh.model if config.mesh.data == -1 else config.mesh.data
  if config.mesh.model < 1 or data_axis < 1 or data_axis * config.mesh.model > devices:
    raise JaxrecError(f"config.mesh: data={config.mesh.data} × model={config.mesh.model} needs more than the "
                      f"{devices} devices")
  for field in ("batch_size", "eval_batch_size"):
    if config[field] % data_axis:
      raise JaxrecError(f"config.{field}: {config[field]} is not divisible by the mesh's data axis ({data_axis})")


def _cf_model(config, dataset):
  """(cf_model, cf_params) for a CF source that runs as a model (SASRec / DIN), restored from its workdir."""
  cf = config.model.cf
  if cf.name == "none" or cf_source.resolve_kind(cf.name, cf.source) != "model":
    return None, None
  if not cf.workdir:
    raise JaxrecError(f"config.model.cf.workdir: required for cf.name={cf.name!r} (a finished CF run's workdir)")
  cf_config = run_dir.read_config(cf.workdir)
  _, cf_model, init = cf_task.build(cf_config)
  return cf_model, loop.restore_params(cf_config, cf.workdir, init)


def build(config, dataset=None):
  """(dataset, tokenizer, model, params); deterministic in config, so `evaluate` rebuilds what `train` trained."""
  dataset = load_dataset(config.data) if dataset is None else dataset
  tok = models.load_tokenizer(config.model)
  template, _ = models.prompt_settings(config.model, config.data)
  cf_model, cf_params = _cf_model(config, dataset)
  model, params = models.build(config.model, tokenizer=tok, template=template, cf_params=cf_params,
                               cf_model=cf_model, n_users=dataset.n_users, n_items=dataset.n_items,
                               train_users=dataset["train"].user, seed=int(config.seed))
  return dataset, tok, model, params


def mesh_and_axes(config, model, params):
  """The mesh and logical axes of the params tree: the backbone's own, adapters from their kernels, rest replicated."""
  model_axis = int(config.mesh.model)
  data_axis = jax.device_count() // model_axis if config.mesh.data == -1 else int(config.mesh.data)
  mesh = sharding.make_mesh(data_axis, model_axis, devices=jax.devices()[:data_axis * model_axis])
  llm_axes = param_axes(model.decoder.cfg)
  axes = {k: jax.tree.map(lambda _: P(), v) for k, v in params.items()}
  axes["llm"] = llm_axes
  if "lora" in params:
    axes["lora"] = lora.axes(params["lora"], llm_axes)
  return mesh, axes


class PromptData:
  """Training batches of one split's prompts for `loop.train`: grain over a deterministic (seed, epoch) plan with
  length bucketing; fixed batch size (remainder dropped); each batch placed on the mesh's `data` axis."""

  def __init__(self, table: pipeline.PromptTable, batch_size: int, seed: int, mesh):
    self.table, self.batch_size, self.seed, self.mesh = table, batch_size, seed, mesh
    self.steps_per_epoch = len(table) // batch_size

  def batches(self, epoch: int, start: int = 0):
    plan = pipeline.plan_batches(len(self.table), self.batch_size, self.seed, epoch=epoch, drop_remainder=True,
                                 lengths=self.table.lengths)
    for batch in pipeline.grain.MapDataset.source(plan[start:]).map(self.table.collate):
      yield sharding.shard_batch(_model_inputs(batch), self.mesh)


_INPUTS = ("input_ids", "attention_mask", "user_slot_pos", "item_slot_pos", "user", "item", "label", "history",
           "history_len", "history_label")


def _model_inputs(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  return {k: batch[k] for k in _INPUTS if k in batch}


def score_table(score_fn, params, table: pipeline.PromptTable, batch_size: int, mesh) -> np.ndarray:
  """P(Yes) [N] for every row of `table`, in row order (length-bucketed batches; the last one padded to size)."""
  plan = pipeline.plan_batches(len(table), batch_size, 0, shuffle=False, lengths=table.lengths)
  out = np.zeros(len(table), np.float32)
  for rows in plan:
    real = len(rows)
    rows = np.concatenate([rows, np.repeat(rows[-1:], batch_size - real)])  # one compiled batch size
    batch = sharding.shard_batch(_model_inputs(table.collate(rows)), mesh)
    out[rows[:real]] = np.asarray(score_fn(params, batch))[:real]
  return out


class Runner:
  """What `train` and `evaluate` share: the built model, its jitted scorer and per-template prompt tables."""

  def __init__(self, config, dataset=None):
    self.config = config
    self.dataset, self.tok, self.model, params = build(config, dataset)
    self.mesh, self.axes = mesh_and_axes(config, self.model, params)
    self.params = sharding.shard_tree(params, self.axes, self.mesh)
    self.score_fn = jax.jit(models.make_score_fn(self.model))
    self.default_template, _ = models.prompt_settings(config.model, config.data)
    self._tables: dict[tuple[str, str], pipeline.PromptTable] = {}

  def table(self, split: str, template: str | None = None, split_obj=None) -> pipeline.PromptTable:
    template = template or self.default_template
    key = (split, template)
    if key not in self._tables:
      ds = self.dataset if split_obj is None else _with_split(self.dataset, split, split_obj)
      self._tables[key] = pipeline.PromptTable(ds, split, self.config.data, self.tok, template)
    return self._tables[key]

  def metrics(self, params, split: str, template: str | None = None, split_obj=None) -> dict[str, float]:
    t = self.table(split, template, split_obj)
    scores = score_table(self.score_fn, params, t, int(self.config.eval_batch_size), self.mesh)
    return ev.ctr_metrics(t.split.user, t.split.label, scores, getattr(t.split, "warm", None))

  def stage_inputs(self, stage):
    """(train_data, evaluate_fn) of one stage: its template's prompts."""
    template = prompts.TEMPLATES[stage.template] if stage.get("template") else None
    data = PromptData(self.table("train", template), int(self.config.batch_size), int(self.config.seed),
                      self.mesh)
    return data, lambda params: self.metrics(params, self.config.eval.split, template)


def _with_split(dataset, name, split):
  import dataclasses

  return dataclasses.replace(dataset, splits={**dataset.splits, name: split})


def preflight(config, workdir: pathlib.Path):
  """Everything a run will read, checked before any stage (and before the CF pre-training) writes a byte: the data,
  the LLM's files, the tokenizer, the CF source and the `cf_train` section. Returns (dataset, whether to train the
  CF model into `<workdir>/cf`).

  Sets `config.model.cf.workdir` to `<workdir>/cf` when the CF model is to be trained here, as the saved config
  records it (so a resumed run's config compares equal)."""
  dataset = load_dataset(config.data)
  spec = config.model.llm
  if spec != "random":
    loading.check_pretrained(spec or None)
  models.load_tokenizer(config.model)
  cf = config.model.cf
  if cf.name == "none":
    return dataset, False
  if cf.workdir:
    run_dir.read_config(cf.workdir)
    return dataset, False
  if "cf_train" not in config:
    raise JaxrecError("config.model.cf.workdir: empty, and the config has no cf_train section to train one")
  cf_config = config.cf_train
  if cf_config.data.get("root") is None:
    cf_config.data.root = config.data.get("root")
  if cf_config.data.name != config.data.name:
    raise JaxrecError(f"config.cf_train.data.name: {cf_config.data.name!r} differs from config.data.name "
                      f"{config.data.name!r}")
  cf_task.validate(cf_config)
  cf.workdir = str(workdir / "cf")
  return dataset, True


def pretrain_cf(config, workdir: pathlib.Path, progress: bool) -> None:
  """Trains `config.cf_train` into `<workdir>/cf` (resumable; a finished one is read back)."""
  print(f"training the CF model ({config.model.cf.name}) into {workdir / 'cf'}", flush=True)
  cf_task.train(config.cf_train, workdir / "cf", progress=progress)


def train(config, workdir, progress: bool = True) -> dict:
  validate(config)
  workdir = pathlib.Path(workdir)
  dataset, train_cf = preflight(config, workdir)
  with run_dir.claim(workdir):
    run_dir.check_config(config, workdir)  # before the CF model is trained into it
    if train_cf:
      pretrain_cf(config, workdir, progress)
    return _train(config, workdir, dataset, progress)


def _train(config, workdir: pathlib.Path, dataset, progress: bool) -> dict:
  runner = Runner(config, dataset)
  result = loop.train(config, workdir, init_params=runner.params, loss_fn=models.make_loss_fn(runner.model),
                      evaluate_fn=None, train_data=None, stage_inputs=runner.stage_inputs, progress=progress)
  finals = {}
  for name in config.eval.final_splits:
    if name in runner.dataset.splits:
      finals[name] = runner.metrics(result.params, name, _last_template(config))
  ev.write_metrics(workdir / "metrics.json", {"splits": finals, "stages": result.stages})
  print(ev.format_table(finals), flush=True)
  export(runner, result.params, workdir)
  results.write_results_md(workdir / "results.md", config, finals, result.stages,
                           results.pictures(workdir, config, finals, result.stages))
  return finals


def _last_template(config) -> str | None:
  name = config.stages[-1].get("template")
  return prompts.TEMPLATES[name] if name else None


def export(runner: Runner, params, workdir: pathlib.Path) -> None:
  """LoRA adapters in PEFT format (adapter/) and item embeddings (embeddings/item.npy: the CF model's, and
  item_llm.npy: the same mapped by FECE into the LLM's token space, [n_items + 1, proj_token_num · D])."""
  params = jax.device_get(params)
  if "lora" in params:
    lora.save_peft(workdir / "adapter", params["lora"], models.lora_config(runner.config.model),
                   runner.model.decoder.cfg.num_layers, base_model=str(runner.config.model.llm or "SmolLM2-135M"))
  if runner.model.cf is None:
    return
  items = jnp.arange(runner.dataset.n_items + 1)
  cf_vecs = np.asarray(runner.model.cf.item_vectors(params["cf"], items))  # [I + 1, d]
  mapped = np.asarray(fece.apply_mapper(params["fece"], jnp.asarray(cf_vecs), runner.model.proj_token_num))
  with atomic_dir(workdir / "embeddings") as tmp:
    np.save(tmp / "item.npy", cf_vecs)
    np.save(tmp / "item_llm.npy", mapped.reshape(mapped.shape[0], -1))


def evaluate(workdir, split: str, output: str | None = None) -> dict:
  """Evaluates a finished run's best parameters on `split` (a split name or a file in the dataset's format)."""
  config = run_dir.read_config(workdir)
  runner = Runner(config)
  with run_dir.claim(workdir, shared=True):  # not while a run trains it
    return _evaluate(config, workdir, runner, split, output)


def _evaluate(config, workdir, runner: Runner, split: str, output: str | None) -> dict:
  params = loop.restore_params(config, workdir, runner.params)
  path = pathlib.Path(split)
  if split in runner.dataset.splits:
    name, metrics = split, runner.metrics(params, split, _last_template(config))
  elif path.is_file():
    name = path.stem
    metrics = runner.metrics(params, name, _last_template(config), split_obj=cf_task.split_from_file(config, path))
  else:
    raise JaxrecError(f"--split={split}: neither a split of {config.data.name} ({', '.join(runner.dataset.splits)})"
                      f" nor a file")
  out = pathlib.Path(output) if output else pathlib.Path(workdir) / "eval" / f"{name}.json"
  ev.write_metrics(out, {"splits": {name: metrics}, "source": str(split)})
  print(ev.format_table({name: metrics}), flush=True)
  print(f"wrote {out}", flush=True)
  return {name: metrics}
