"""The LLM recommenders (config.model.family == 'llmrec'): TALLRec and CoLLM-FaissRet, as a family of the task
protocol (`jaxrec.train.task`): prompt batches through grain, sharded on the mesh; the CF model trained first into
<workdir>/cf when the config has no finished one; exports the LoRA adapters in PEFT format (adapter/) and the item
embeddings (embeddings/).

A stage may name its own prompt `template` (CoLLM's released order: LoRA on the text-only prompt, then the mapper on
the prompt with ID slots); by default every stage uses config.model.template (else config.data.template).

Config: seed, data (a `jaxrec.data` config), model (`jaxrec.models.config`), batch_size, eval_batch_size, log_every,
checkpoint_every, stages (`jaxrec.train.config`, plus `template`), mesh (data, model: device counts, -1 = the
rest), eval (split for early stopping, final_splits), cf_train (the CF model's config when model.cf.workdir is empty).
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from jaxrec import evaluate as ev, models, sharding
from jaxrec.data import load_dataset, load_split_file, pipeline, prompts, schema, validation_sample
from jaxrec.errors import JaxrecError
from jaxrec.llm import backbone, loading, lora, stacking
from jaxrec.llm.model import param_axes
from jaxrec.models import cf_source, fece, prefix as prefix_lib, scoring
from jaxrec.models.scoring import PYesScorer
from jaxrec.paths import atomic_dir
from jaxrec.train import cf_runs, cf_task, loop, results, workdir as run_dir
from jaxrec.train.config import validate_early_stopping, validate_loop_config
from jaxrec.train.task import Built



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
  validate_early_stopping(config.stages, ev.metric_names("ctr"))
  eval_dtype = config.get("eval_dtype", "")
  if eval_dtype and eval_dtype not in backbone.DTYPES:
    raise JaxrecError(f"config.eval_dtype: expected '' (the model's dtype) or one of {tuple(backbone.DTYPES)}, got "
                      f"{eval_dtype!r}")
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
  _, cf_model, init = cf_task.build_model(cf_config)
  return cf_model, loop.restore_params(cf_config, cf.workdir, init)


def build_model(config, dataset=None):
  """(dataset, tokenizer, model, params); deterministic in config, so a finished run rebuilds what it trained."""
  dataset = load_dataset(config.data) if dataset is None else dataset
  tok = backbone.load_tokenizer(config.model)
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
  return mesh, params_axes(model, params)


def params_axes(model, params):
  """Logical axes of an LLMRec params tree (concrete or abstract): the backbone's own (stacked for scan_layers),
  adapters from their kernels, everything else replicated."""
  llm_axes = param_axes(model.decoder.cfg)
  if model.decoder.scan_layers:
    llm_axes = stacking.stacked_axes(llm_axes)
  axes = {k: jax.tree.map(lambda _: P(), v) for k, v in params.items()}
  axes["llm"] = llm_axes
  if "lora" in params:
    axes["lora"] = lora.axes(params["lora"], llm_axes)
  return axes


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
           "history_len", "history_label", "group")


def _model_inputs(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  return {k: batch[k] for k in _INPUTS if k in batch}


class Runner:
  """The built model on its mesh, its P(Yes) scorer and per-template prompt tables (a run's training and evaluation,
  the re-ranking scorer of a trained run, export)."""

  def __init__(self, config, dataset=None, progress: bool = False):
    self.config, self.progress = config, progress
    self.dataset, self.tok, self.model, params = build_model(config, dataset)
    self.mesh, self.axes = mesh_and_axes(config, self.model, params)
    self.params = sharding.shard_tree(params, self.axes, self.mesh)
    # scoring may run the backbone in another dtype than training (config.eval_dtype; '' = the model's own)
    self.eval_dtype = backbone.DTYPES[config.get("eval_dtype") or config.model.dtype]
    score_model = self.model
    if self.eval_dtype != self.model.decoder.dtype:
      score_model = dataclasses.replace(self.model, decoder=self.model.decoder.clone(dtype=self.eval_dtype))
    self.scorer = PYesScorer(score_model, int(config.eval_batch_size),
                             place=lambda batch: sharding.shard_batch(_model_inputs(batch), self.mesh),
                             data_shards=int(self.mesh.shape["data"]))
    self.default_template, _ = models.prompt_settings(config.model, config.data)
    self._tables: dict[tuple, tuple] = {}  # (split, template, id(split_obj)) → (split_obj, PromptTable)
    whole = self.dataset.splits.get(config.eval.split)
    # early stopping's rows (max_eval_rows), drawn once so every stage reads the same cached prompt table
    sample = validation_sample(config.data, whole) if whole is not None else None
    self._valid_sample = None if sample is whole else sample
    self._cf_rows = None  # the CF model's row scorer, for the final comparison
    self._final_memo = scoring.ScoreMemo()  # final splits overlap (valid_small ⊂ valid): each row is scored once

  def table(self, split: str, template: str | None = None, split_obj=None) -> pipeline.PromptTable:
    template = template or self.default_template
    key = (split, template, id(split_obj))
    if key not in self._tables:
      ds = self.dataset if split_obj is None else _with_split(self.dataset, split, split_obj)
      # the entry holds split_obj, so its id cannot be reused by another split while the table is cached
      self._tables[key] = (split_obj, pipeline.PromptTable(ds, split, self.config.data, self.tok, template))
    return self._tables[key][1]

  def scoring_params(self, params):
    """`params` with the backbone's weights stored in the scoring dtype (config.eval_dtype)."""
    if self.eval_dtype == self.model.decoder.dtype:
      return params
    return {**params, "llm": jax.tree.map(lambda x: x.astype(self.eval_dtype), params["llm"])}

  def scores(self, params, table: pipeline.PromptTable, memo: scoring.ScoreMemo | None = None) -> np.ndarray:
    """[N] P(Yes) of every row of `table`, in row order; rows of one user and history run their common prompt
    prefix once unless config.shared_prefix is False (the same scores either way). With `memo`, rows it already
    holds for these `params` are not run again."""
    fields = prefix_lib.row_fields(table.split)
    rows = np.arange(len(table))
    if memo is not None:
      keys = scoring.row_keys(table.encodings, fields)
      rows = memo.missing(params, keys)
    params = self.scoring_params(params)
    if self.config.get("shared_prefix", True):
      out = self.scorer.shared(params, [table.encodings[r] for r in rows], {f: v[rows] for f, v in fields.items()},
                               table.pad_id, table.pad_multiple, progress=self.progress, desc="scoring")
    else:
      out = self.scorer(params, len(rows), lambda b: table.collate(rows[b]), table.lengths[rows],
                        progress=self.progress, desc="scoring")
    return out if memo is None else memo.fill(keys, rows, out)

  def metrics(self, params, split: str, template: str | None = None, split_obj=None,
              final: bool = False) -> dict[str, float]:
    """CTR metrics of `split`; a final evaluation adds their bootstrap intervals, every row's score (`ev.PER_ROW`)
    and 'vs_cf': the CF model (`cf_runs.reference`) scored on the same rows and the paired difference of each metric
    (this run − CF model) with its interval, overall / warm / cold (`ev.paired_ctr`)."""
    t = self.table(split, template, split_obj)
    scores = self.scores(params, t, self._final_memo if final else None)
    warm = getattr(t.split, "warm", None)
    out = ev.ctr_metrics(t.split.user, t.split.label, scores, warm, intervals=final)
    if final:
      out[ev.PER_ROW] = ev.per_row_scores(t.split, scores)
      ref = cf_runs.reference(self.config)
      if ref is not None:  # the CF model this run builds on (or a text-only run's reference), on the same rows
        if self._cf_rows is None:  # rebuilt once for all final splits
          self._cf_rows = cf_task.row_scorer(ref[1])
        cf_scores = self._cf_rows(t.split)
        out["vs_cf"] = {"model": ref[0],  # its workdir: config.model.cf.workdir (TALLRec: config.eval.reference_cf)
                        **ev.paired_ctr(t.split.user, t.split.label, cf_scores, scores, warm)}
    return out

  def stage_inputs(self, stage):
    """(train_data, evaluate_fn) of one stage: its template's prompts."""
    template = prompts.TEMPLATES[stage.template] if stage.get("template") else None
    data = PromptData(self.table("train", template), int(self.config.batch_size), int(self.config.seed),
                      self.mesh)
    return data, lambda params: self.metrics(params, self.config.eval.split, template, split_obj=self._valid_sample)


def _with_split(dataset, name, split):
  """`dataset` with `split` under `name`, its item text extended by the items a split file introduced."""
  return dataclasses.replace(schema.with_split_texts(dataset, split), splits={**dataset.splits, name: split})


def load(config, workdir: pathlib.Path | None):
  """Everything a run will read, checked before any stage (and before the CF pre-training) writes a byte: the data,
  the LLM's files, the tokenizer, the CF source and the `cf_train` section. Returns (dataset, whether to train the
  CF model into `<workdir>/cf`); a finished run (`workdir` None) needs only its dataset.

  Sets `config.model.cf.workdir` (a text-only run: `config.eval.reference_cf` = 'train') to `<workdir>/cf` when the
  CF model is to be trained here, as the saved config records it (so a resumed run's config compares equal)."""
  dataset = load_dataset(config.data)
  if workdir is None:
    return dataset, False
  spec = config.model.llm
  if spec != "random":
    loading.check_pretrained(spec or None)
  backbone.load_tokenizer(config.model)
  cf = config.model.cf
  if cf.name == "none":  # text only: a CF reference for the final comparison, if the config names one
    ref = config.eval.get("reference_cf", "")
    if ref and ref != "train":
      cf_runs.check(ref, config, "eval.reference_cf")
    if ref != "train":
      return dataset, False
    cf_runs.train_config(config, "eval.reference_cf ('train')")
    config.eval.reference_cf = str(workdir / "cf")
    return dataset, True
  if cf.workdir:
    cf_runs.check(cf.workdir, config, "model.cf.workdir", cf.name)
    return dataset, False
  cf_runs.train_config(config, "model.cf.workdir (empty)")
  cf.workdir = str(workdir / "cf")
  return dataset, True


def prepare(config, workdir: pathlib.Path, inputs, progress: bool) -> None:
  """Trains `config.cf_train` into `<workdir>/cf` when `load` said so (resumable; a finished one is read back)."""
  from jaxrec.train import task  # the CF model is a run of its own, with the same life cycle

  if inputs[1]:
    print(f"training the CF model ({config.cf_train.model.name}) into {workdir / 'cf'}", flush=True)
    task.train(config.cf_train, workdir / "cf", progress=progress)


def build(config, inputs, progress: bool = True) -> Built:
  runner = Runner(config, inputs[0], progress=progress)
  last = _last_template(config)
  return Built(
      dataset=runner.dataset, params=runner.params, loss_fn=models.make_loss_fn(runner.model),
      stage_inputs=runner.stage_inputs,
      evaluate=lambda params, name, split: runner.metrics(
          params, name, last, split_obj=None if runner.dataset.splits.get(name) is split else split, final=True),
      export=lambda params, workdir: export(runner, params, workdir))


def write_results(path, config, record, picture_lines) -> None:
  results.write_results_md(path, config, record["splits"], record["stages"], picture_lines)


def _last_template(config) -> str | None:
  name = config.stages[-1].get("template")
  return prompts.TEMPLATES[name] if name else None


def export(runner: Runner, params, workdir: pathlib.Path) -> None:
  """LoRA adapters in PEFT format (adapter/) and item embeddings (embeddings/item.npy: the CF model's, and
  item_llm.npy: the same mapped by FECE into the LLM's token space, [n_items + 1, proj_token_num · D])."""
  params = jax.device_get(params)
  if "lora" in params:
    lora.save_peft(workdir / "adapter", params["lora"], backbone.lora_config(runner.config.model),
                   runner.model.decoder.cfg.num_layers, base_model=str(runner.config.model.llm or "SmolLM2-135M"))
  if runner.model.cf is None:
    return
  items = jnp.arange(runner.dataset.n_items + 1)
  cf_vecs = np.asarray(runner.model.cf.item_vectors(params["cf"], items))  # [I + 1, d]
  mapped = np.asarray(fece.apply_mapper(params["fece"], jnp.asarray(cf_vecs), runner.model.proj_token_num))
  with atomic_dir(workdir / "embeddings") as tmp:
    np.save(tmp / "item.npy", cf_vecs)
    np.save(tmp / "item_llm.npy", mapped.reshape(mapped.shape[0], -1))


def split_from_file(config, path: pathlib.Path, dataset):
  """A split file in the dataset's own format; every item a prompt names (targets and history) must have a text:
  the dataset's own, or one the file gave (`Split.item_text_extra`)."""
  split = load_split_file(config.data, path, dataset)
  named = np.fromiter(split.item_text_extra, np.int64, len(split.item_text_extra))
  for field in ("item", "history"):
    ids = getattr(split, field).reshape(len(split), -1)  # [N, 1] or [N, H]
    nameless = (ids > dataset.n_items) & ~np.isin(ids, named)
    if nameless.any():
      row, col = np.argwhere(nameless)[0]
      raise JaxrecError(f"--split={path}: row {row} names item {int(ids[row, col])} ({field}), which "
                        f"{dataset.name} does not have and the file gives no title for; an LLM prompt cannot name it "
                        f"(a CF run scores such rows)")
  return split
