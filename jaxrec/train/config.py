"""The stage schema and value checks for training configs.

A training config has `seed`, `batch_size`, `eval_batch_size`, `log_every`, `checkpoint_every` and `stages`, a list of
stage ConfigDicts run in order (CF baselines: one stage; LLM models: two). A stage:

  name: str                      unique; names the checkpoint folder checkpoints/<name>/
  trainable: list[str]           regexes (fullmatch) over '/'-joined parameter paths that train
  frozen: list[str]              regexes that stay frozen even if a trainable regex matches; the rest is frozen too
  optimizer:
    lr: float in (0, 10], weight_decay: float in [0, 100], warmup_steps: int >= 0, schedule: 'cosine' | 'constant',
    b1, b2: float in [0, 1), grad_clip: float (global norm; <= 0 disables), end_lr_ratio: float in [0, 1]
  num_epochs: int >= 1           stage length in passes over the training data ...
  max_steps: int                 ... or in steps when > 0 (the smaller of the two wins)
  eval_every: int                validate every N steps; <= 0 means once per epoch
  early_stopping:
    metric: str                  a key of the evaluator's output, e.g. 'auc', 'uauc', 'ndcg@10', 'warm/auc'
    mode: 'max' | 'min'
    patience: int                stop after this many evaluations in a row without improvement (>= 1); < 0 never
                                 stops early (0 is refused: it would read as "stop at once")
  init_from: 'previous' | 'scratch'   start from the previous stage's best parameters, or from the initial ones
  template: str | None           LLM tasks only: a prompt template name for this stage (None = the model's)
"""

from __future__ import annotations

import math
import re

import ml_collections

from jaxrec.config_util import checker, update_strict


def stage_config(**overrides) -> ml_collections.ConfigDict:
  """A stage with the defaults below, updated by `overrides` (nested dicts allowed; unknown keys raise)."""
  stage = ml_collections.ConfigDict({
      "name": "main",
      "trainable": ["params/.*"],
      "frozen": [],
      "optimizer": {"lr": 1e-3, "weight_decay": 0.0, "warmup_steps": 0, "schedule": "cosine", "b1": 0.9,
                    "b2": 0.999, "grad_clip": 0.0, "end_lr_ratio": 0.0},
      "num_epochs": 1,
      "max_steps": -1,
      "eval_every": -1,
      "early_stopping": {"metric": "auc", "mode": "max", "patience": -1},
      "init_from": "previous",
      "template": ml_collections.config_dict.placeholder(str),
  })
  update_strict(stage, overrides, "stage")
  return stage


_check = checker("config")

# Beyond these a run can only diverge (or do nothing): refused up front rather than trained into NaN.
MAX_LR = 10.0
MAX_WEIGHT_DECAY = 100.0


def _number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate_stages(stages, min_stages: int = 1) -> None:
  """Raises a one-line JaxrecError naming the first bad field of `config.stages` (at least `min_stages` of them;
  a model fitted in closed form has none)."""
  _check(len(stages) >= min_stages, "stages", f"at least {min_stages} stage(s)", stages)
  reference = stage_config()
  names = set()
  for i, stage in enumerate(stages):
    where = f"stages[{i}]"
    for key in stage.keys():
      _check(key in reference, f"{where}.{key}", f"a stage field ({', '.join(sorted(reference.keys()))})", key)
    for sub in ("optimizer", "early_stopping"):
      for key in stage.get(sub, {}).keys():
        _check(key in reference[sub], f"{where}.{sub}.{key}", f"one of {sorted(reference[sub].keys())}", key)
    _check(isinstance(stage.name, str) and stage.name and stage.name not in names and "/" not in stage.name,
           f"{where}.name", "a unique non-empty name without '/'", stage.name)
    names.add(stage.name)
    for field in ("trainable", "frozen"):
      for j, pattern in enumerate(stage.get(field, [])):
        try:
          re.compile(pattern)
        except (re.error, TypeError):
          _check(False, f"{where}.{field}[{j}]", "a regular expression", pattern)
    _check(len(stage.trainable) > 0, f"{where}.trainable", "at least one regex", stage.trainable)
    opt = stage.optimizer
    _check(_number(opt.lr) and 0 < opt.lr <= MAX_LR, f"{where}.optimizer.lr",
           f"a finite learning rate in (0, {MAX_LR:g}]", opt.lr)
    _check(_number(opt.weight_decay) and 0 <= opt.weight_decay <= MAX_WEIGHT_DECAY, f"{where}.optimizer.weight_decay",
           f"a finite value in [0, {MAX_WEIGHT_DECAY:g}]", opt.weight_decay)
    _check(_number(opt.get("grad_clip", 0.0)), f"{where}.optimizer.grad_clip", "a finite number (<= 0 disables)",
           opt.get("grad_clip"))
    _check(opt.warmup_steps >= 0, f"{where}.optimizer.warmup_steps", "an integer >= 0", opt.warmup_steps)
    _check(opt.schedule in ("cosine", "constant"), f"{where}.optimizer.schedule", "'cosine' or 'constant'",
           opt.schedule)
    _check(0 <= opt.b1 < 1, f"{where}.optimizer.b1", "a value in [0, 1)", opt.b1)
    _check(0 <= opt.b2 < 1, f"{where}.optimizer.b2", "a value in [0, 1)", opt.b2)
    _check(0 <= opt.get("end_lr_ratio", 0.0) <= 1, f"{where}.optimizer.end_lr_ratio", "a value in [0, 1]",
           opt.get("end_lr_ratio"))
    _check(stage.num_epochs >= 1, f"{where}.num_epochs", "an integer >= 1", stage.num_epochs)
    es = stage.early_stopping
    _check(isinstance(es.metric, str) and es.metric, f"{where}.early_stopping.metric", "a metric name", es.metric)
    _check(es.mode in ("max", "min"), f"{where}.early_stopping.mode", "'max' or 'min'", es.mode)
    _check(isinstance(es.patience, int) and es.patience != 0, f"{where}.early_stopping.patience",
           "an integer >= 1 (evaluations without improvement before stopping) or < 0 (never stop early)", es.patience)
    _check(stage.init_from in ("previous", "scratch"), f"{where}.init_from", "'previous' or 'scratch'",
           stage.init_from)


def validate_early_stopping(stages, names) -> None:
  """Each stage's early-stopping metric must be one the family's evaluator reports (`names`)."""
  for i, stage in enumerate(stages):
    _check(stage.early_stopping.metric in names, f"stages[{i}].early_stopping.metric", f"one of {list(names)}",
           stage.early_stopping.metric)


def validate_loop_config(config, min_stages: int = 1) -> None:
  """The loop-level fields plus every stage."""
  _check(config.batch_size >= 1, "batch_size", "an integer >= 1", config.batch_size)
  _check(config.get("eval_batch_size", 1) >= 1, "eval_batch_size", "an integer >= 1", config.get("eval_batch_size"))
  _check(config.get("log_every", 1) >= 1, "log_every", "an integer >= 1", config.get("log_every"))
  _check(config.get("checkpoint_every", 1) >= 1, "checkpoint_every", "an integer >= 1",
         config.get("checkpoint_every"))
  final_rows = config.get("final_eval_rows", -1)
  _check(isinstance(final_rows, int) and (final_rows == -1 or final_rows >= 1), "final_eval_rows",
         "-1 (every row of each final split) or a number of rows >= 1", final_rows)
  validate_stages(config.stages, min_stages)
