"""One life cycle for every model family: train (resumable), final evaluation, metrics.json, results.md, export,
evaluating a finished run on a split name or file, and rewriting results.md.

  task.train(config, workdir)           launch/train.py
  task.evaluate(workdir, split)         launch/evaluate.py
  task.report(workdir, baselines)       launch/report.py

A family (`FAMILIES[config.model.family]`) is a module that supplies only what differs:

  validate(config)                      one-line JaxrecError for an impossible value anywhere in the config
  load(config, workdir) -> inputs       reads and checks every input (data, weights, a CF source) before the workdir
                                        is touched; `workdir` is None when a finished run is rebuilt
  prepare(config, workdir, inputs, progress)   work inside the claimed workdir before training (CoLLM's CF model)
  build(config, inputs, **kw) -> Built  the dataset, model, initial params, loss and evaluators
  split_from_file(config, path, dataset) -> Split   a split file in the dataset's own format, read against it
  write_results(path, config, record, picture_lines)   results.md from the metrics.json record

A walk of one value, e.g. `config.model.lora.alpha`: launch/train.py → `train` here → the family's `build` →
the model (`jaxrec.llm.backbone.decoder`: scale α / r) → the loss the loop differentiates.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pathlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from jaxrec import evaluate as ev
from jaxrec.data.sampling import sample_rows
from jaxrec.errors import JaxrecError
from jaxrec.train import loop, results, workdir as run_dir

FAMILIES = {
    "cf": "jaxrec.train.cf_task",
    "llmrec": "jaxrec.train.llm_task",
    "multiscale": "jaxrec.train.multiscale_task",
}


@dataclasses.dataclass
class Built:
  """What a family builds from a config: everything the life cycle needs, nothing it must know about the model."""

  dataset: Any
  params: Any  # initial parameters (already placed on the mesh where the family shards)
  loss_fn: Callable  # (trainable, frozen, batch, rng) -> (loss, aux)
  stage_inputs: Callable  # stage -> (train data, evaluate_fn(params) -> validation metrics)
  evaluate: Callable[[Any, str, Any], dict]  # (params, split name, Split) -> metrics
  export: Callable[[Any, pathlib.Path], None] = lambda params, workdir: None  # embeddings, adapters
  # (params, name, Split) -> metrics of a finished run on a split that may hold ids the model never had
  evaluate_any: Callable[[Any, str, Any], dict] | None = None
  extra: Callable[[Mapping[str, Any]], dict] = lambda finals: {}  # more metrics.json entries, from the finals


def family(name: str | None):
  """The module of `config.model.family`."""
  if name not in FAMILIES:
    raise JaxrecError(f"config.model.family: expected one of {sorted(FAMILIES)}, got {name!r}")
  return importlib.import_module(FAMILIES[name])


def family_of(config):
  return family(config.model.get("family", "cf") if "model" in config else None)


def train(config, workdir, progress: bool = True, **build_kw) -> dict:
  """Trains every stage (resuming a killed run in `workdir`), evaluates the best parameters on
  config.eval.final_splits and writes metrics.json, results.md and the family's exports."""
  fam = family_of(config)
  fam.validate(config)
  workdir = pathlib.Path(workdir)
  start = time.perf_counter()
  inputs = fam.load(config, workdir)  # every input read and checked before the workdir is touched
  with run_dir.claim(workdir):
    run_dir.check_config(config, workdir)  # a workdir of another config is refused before a byte is written
    fam.prepare(config, workdir, inputs, progress)
    built = fam.build(config, inputs, progress=progress, **build_kw)
    result = loop.train(config, workdir, init_params=built.params, loss_fn=built.loss_fn,
                        stage_inputs=built.stage_inputs, progress=progress)
    finals, saved = ev.split_saved({name: built.evaluate(result.params, name, final_split(config, built, name))
                                    for name in config.eval.final_splits if name in built.dataset.splits})
    ev.write_saved(workdir, saved)  # top-K: each user's terms; CTR: each row's score (launch/compare.py)
    # wall_s: this process's seconds (a resumed run counts only its last part)
    record = {"splits": finals, "stages": result.stages, **built.extra(finals),
              "wall_s": round(time.perf_counter() - start, 1)}
    ev.write_metrics(workdir / "metrics.json", record)
    print(ev.format_table(finals), flush=True)
    built.export(result.params, workdir)
    fam.write_results(workdir / "results.md", config, record,
                      results.pictures(workdir, config, finals, result.stages))
    return finals


def final_split(config, built: Built, name: str):
  """The rows a final evaluation of split `name` reports: all of them unless config.final_eval_rows caps them (the
  tiny test configs do; results.md then says so)."""
  return sample_rows(built.dataset.splits[name], int(config.get("final_eval_rows", -1)),
                     int(config.data.get("seed", 0)))


def evaluate(workdir, split: str, output: str | None = None, progress: bool = True) -> dict:
  """Evaluates a finished run's best parameters on `split` (a split name, or a file in the dataset's own format):
  `<workdir>/eval/<name>.json` (or `output`), printed as a table."""
  config = run_dir.read_config(workdir)
  fam = family_of(config)
  built = fam.build(config, fam.load(config, None), progress=progress)
  with run_dir.claim(workdir, shared=True):  # not while a run trains it
    params = loop.restore_params(config, workdir, built.params)
    path = pathlib.Path(split)
    if split in built.dataset.splits:
      name, sp = split, final_split(config, built, split)  # the rows the run's own final figures cover
    elif path.is_file():
      name, sp = path.name.split(".")[0], fam.split_from_file(config, path, built.dataset)
    else:
      raise JaxrecError(f"--split={split}: neither a split of {config.data.name} ({', '.join(built.dataset.splits)})"
                        f" nor a file")
    metrics, saved = ev.split_saved({name: (built.evaluate_any or built.evaluate)(params, name, sp)})
    metrics = metrics[name]
  out = pathlib.Path(output) if output else pathlib.Path(workdir) / "eval" / f"{name}.json"
  ev.write_saved(out.parent, saved)
  ev.write_metrics(out, {"splits": {name: metrics}, "source": str(split)})
  print(ev.format_table({name: metrics}), flush=True)
  print(f"wrote {out}", flush=True)
  return {name: metrics}


def report(workdir, baselines: Mapping[str, str] | None = None) -> pathlib.Path:
  """Rewrites `<workdir>/results.md` of a finished run from its config.json and metrics.json (nothing is
  recomputed); `baselines` ({label: CF workdir}) replaces config.report.baselines where the family has one."""
  workdir = pathlib.Path(workdir)
  config = run_dir.read_config(workdir)
  path = workdir / "metrics.json"
  try:
    record = json.loads(path.read_text())
    record["splits"]  # pylint: disable=pointless-statement
  except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
    raise JaxrecError(f"{path}: expected the metrics.json of a finished run ({type(e).__name__}: {e})") from None
  if baselines is not None:
    if "report" not in config:
      raise JaxrecError(f"--baseline: a {config.model.get('family')!r} run's results.md has no baselines section")
    config.report.baselines = dict(baselines)
  fam = family_of(config)
  out = workdir / "results.md"
  fam.write_results(out, config, record,
                    results.pictures(workdir, config, record["splits"], record.get("stages", [])))
  return out
