"""Shared pieces of the LLM-recommender configs (configs/{ml1m,ml100k,bookcrossing,amazon_book,tallrec_*}.py): the
loop / mesh defaults, the `tiny` overlay and pointing a recipe at another dataset. The recipes themselves (data
budget, model, stages, optimiser) are written out in configs/ml1m.py (CoLLM-FaissRet) and configs/tallrec_ml1m.py
(TALLRec); the other datasets' configs start from them.

Stage orders (config data, not code paths):
  'fece_then_lora' (default, the design card's): stage 1 trains the FECE mapper with the LLM frozen, stage 2 the
      LoRA adapters with the mapper frozen (set `stages[1].trainable` to add 'fece/.*').
  'collm_order' (CoLLM's released scripts): stage 1 LoRA on the text-only prompt, stage 2 the mapper with LoRA
      frozen on the prompt with ID slots.
  TALLRec: one LoRA stage on the text-only prompt.

When `model.cf.workdir` is empty the CF model is trained first into `<workdir>/cf` from `config.cf_train` (a full
CF baseline config, read from configs/baselines/), so one command runs the whole pipeline.
"""

from __future__ import annotations

import ml_collections

from jaxrec.train import cf_config

# Data fields that are the run's budget, not the dataset's: kept when a recipe moves to another dataset.
BUDGET_FIELDS = ("max_train_rows", "max_eval_rows", "prompt_history")


def defaults() -> ml_collections.ConfigDict:
  """What every LLM-recommender run shares: seed, evaluation batch, logging and checkpoint cadence, mesh."""
  return ml_collections.ConfigDict(dict(
      seed=0,
      eval_batch_size=16,  # prompts per scoring batch
      shared_prefix=True,  # scoring: rows of one user and history run their common prompt prefix once (exact)
      # the backbone's compute dtype when scoring ('' = config.model.dtype): bf16 with float32 accumulation and a
      # float32 head moved full-valid AUC by 0.0002 (ML-1M CoLLM run; benchmarks/results/throughput.md); on CPUs
      # without native bf16 (AVX2 only) float32 scores ~15% faster: set it there
      eval_dtype="bfloat16",
      final_eval_rows=-1,  # final metrics on every row of each final split (data.max_eval_rows: early stopping's)
      log_every=8,
      checkpoint_every=32,
      mesh=dict(data=-1, model=1),  # devices on the data / model axes (-1 = all that remain)
  ))


def use_data(config, name: str) -> ml_collections.ConfigDict:
  """Points a recipe at dataset `name` (a `jaxrec.data` name): its own data section with the recipe's budget
  fields (`BUDGET_FIELDS`); early stopping on valid_small where the dataset has one, else valid."""
  from jaxrec.data import get_data_config

  data = get_data_config(name)
  for field in BUDGET_FIELDS:
    data[field] = config.data[field]
  config.data = data
  splits = ["valid", "valid_small"] if name in ("ml1m_collm", "ml100k", "amazon_book") else ["valid"]
  ref = config.eval.get("reference_cf")  # a TALLRec recipe's CF reference ('train': its cf_train) carries over
  config.eval = ml_collections.ConfigDict(dict(split=splits[-1], final_splits=tuple(splits)))
  if ref is not None:
    config.eval.reference_cf = ref
  return config


def tiny(config) -> ml_collections.ConfigDict:
  """The `tiny` overlay of an LLM-recommender config (tests): a random 2-layer LLM, 48 training and 24 evaluation
  rows, 4 steps a stage, one device; its CF model gets the CF overlay."""
  config.data.max_train_rows, config.data.max_eval_rows = 48, 24
  config.final_eval_rows = 24  # tests: the final figures on 24 rows too
  # 3 history items keep every dataset's prompts (BookCrossing's longest: 231 tokens) under one padded length, so
  # each stage compiles one step, and configs with the same parameter shapes (the TALLRec ones) share it.
  config.data.prompt_history, config.data.pad_multiple = 3, 256
  config.model.llm, config.model.keep_layers = "random", -1
  config.batch_size, config.eval_batch_size = 4, 8
  config.log_every, config.checkpoint_every = 1, 2
  config.mesh.data = 1
  for stage in config.stages:
    stage.optimizer.warmup_steps = 2
    stage.num_epochs, stage.max_steps, stage.eval_every = 1, 4, 2
  if "cf_train" in config:
    cf_config.tiny(config.cf_train)
  return config


def long(config) -> ml_collections.ConfigDict:
  """The `long` arg of the LLM-recommender configs: about an hour on 2 CPU cores at the recipe's 4 layers (a
  CoLLM step of 8 prompts takes ~1.4 s there, a TALLRec one about as long): 8,192 training rows (8× the default),
  one pass per stage (1,024 steps of 8), validated every 128 steps on a 512-row sample of the early-stopping split;
  final figures on the whole splits as always. TALLRec's `:long` is this; configs/ml1m.py (and the CoLLM configs
  built on it) then applies its measured best on ML-1M valid: 2,048 rows, the mapper 512 steps, LoRA 256 at lr 3e-4
  (benchmarks/results/configs/results.md)."""
  config.data.max_train_rows = 8192
  config.data.max_eval_rows = 512
  for stage in config.stages:
    stage.num_epochs, stage.max_steps = 1, 1024
    stage.eval_every = 128
    stage.optimizer.warmup_steps = 50
    stage.early_stopping.patience = 4
  return config


def paper(config, epochs: int) -> ml_collections.ConfigDict:
  """The `paper` arg of the LLM-recommender configs: CoLLM's released recipe (train_configs/
  collm_pretrain_mf_ood.yaml and 0924-tallrec-qwen-ml.yaml in zyang1580/CoLLM; the same optimiser for its TALLRec
  baseline) on the whole data, for accelerators. An 'epoch' there is 50 iterations of 16 prompts, validated after
  each; `epochs` of them at most per stage (CoLLM: 200; its TALLRec: 1000)."""
  config.data.max_train_rows = -1  # every training row
  config.data.max_eval_rows = -1  # early stopping reads the whole validation split
  config.model.keep_layers = -1  # every layer
  config.model.dtype = "bfloat16"  # CoLLM trains under torch amp
  config.model.scan_layers = True  # one compiled layer program for a 32-layer backbone
  config.batch_size, config.eval_batch_size = 16, 64  # batch_size_train / batch_size_eval
  for stage in config.stages:
    stage.num_epochs, stage.max_steps = 1000, epochs * 50  # max_epoch × iters_per_epoch
    stage.eval_every = 50  # one CoLLM epoch
    stage.optimizer.update(lr=1e-3, end_lr_ratio=0.08,  # init_lr 1e-3 → min_lr 8e-5, linear_warmup_cosine_lr
                           warmup_steps=200, weight_decay=1e-3)
    stage.early_stopping.patience = 20  # ours: CoLLM keeps the best validation checkpoint of all its epochs
  return config
