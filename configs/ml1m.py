"""python launch/train.py --config=configs/ml1m.py --workdir=workdirs/collm_ml1m --config.data.root=../shared/data

CoLLM-FaissRet on CoLLM's ML-1M split: MF (trained first into <workdir>/cf) → FECE mapper → the <UserID> /
<TargetItemID> slots of the CoLLM movie prompt → SmolLM2-135M (first 4 layers) with LoRA r=8 on q/v, CoLLM's head. Two
stages: the mapper, then LoRA (arg `collm_order`: CoLLM's released order). A 2-core CPU budget (~20 min, ~5 of them
the final evaluation of the whole valid splits); on an accelerator raise it with --config.model.keep_layers=-1
--config.data.max_train_rows=-1 --config.data.max_eval_rows=-1 --config.stages[i].max_steps=-1, or take `paper`. Args:
`tiny` (random 2-layer LLM: tests), `collm_order`, `joint` (stage 2 trains the mapper and LoRA together), `long`
(~1 h on 2 cores: 2,048 training rows, the mapper 512 steps, LoRA 256 at lr 3e-4; the other datasets' configs
inherit it), `paper` (CoLLM's released settings, for accelerators: see `llm_config.paper`; plan it first:
python launch/plan.py --config=configs/ml1m.py:paper --llm_shape=vicuna_7b). Measured:
benchmarks/results/configs/results.md.
"""

from jaxrec.config_util import parse_arg, sibling_config
from jaxrec.data import get_data_config
from jaxrec.models import model_config
from jaxrec.train import llm_config
from jaxrec.train.config import stage_config


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, collm_order=False, joint=False, long=False, paper=False)
  config = llm_config.defaults()
  config.data = get_data_config("ml1m_collm")
  config.data.max_train_rows = 1024  # CPU budget: 1,024 of the 33,891 training rows (seeded sample)
  config.data.max_eval_rows = 256  # the validation sample early stopping reads (final metrics: whole splits)
  config.data.prompt_history = 10  # history titles in the prompt
  config.model = model_config(
      head="collm",  # P(Yes) = sigmoid(logit of "Yes"), BCE
      template="collm_movie",  # the prompt with <UserID> / <TargetItemID> slots
      keep_layers=4,  # the first 4 of SmolLM2's 30 layers (CPU budget)
      lora=dict(rank=8, alpha=16.0, dropout=0.05),  # CoLLM's, on q_proj / v_proj
      cf=dict(name="mf"))  # its vectors fill the slots; workdir empty: trained from cf_train first
  config.cf_train = sibling_config(__file__, "baselines/mf.py", "ml1m")
  config.batch_size = 8
  stage = dict(num_epochs=3, max_steps=48,  # 48 steps of 8 prompts (the smaller of the two wins)
               eval_every=12,  # validation AUC on the 256-row sample
               optimizer=dict(lr=1e-3, weight_decay=1e-3, warmup_steps=20, schedule="cosine"),
               early_stopping=dict(metric="auc", mode="max", patience=3))
  fece = stage_config(name="fece", trainable=["fece/.*"], **stage)
  lora = stage_config(name="lora", trainable=["lora/.*"], **stage)
  if arg.collm_order:  # LoRA first, on the text-only (TALLRec) prompt; then the mapper with LoRA frozen
    lora.template = "tallrec_movie"
    config.stages = [lora, fece]
  else:
    config.stages = [fece, lora]
  if arg.joint:  # the second stage trains the mapper and LoRA together (the "both trainable in stage 2")
    config.stages[1].name, config.stages[1].trainable = "joint", ["fece/.*", "lora/.*"]
  config.eval = dict(split="valid_small", final_splits=("valid", "valid_small"))
  if arg.long:  # ~1 h on 2 cores; the best budgeted recipe measured on ML-1M valid
    llm_config.long(config)  # validation every 128 steps on a 512-row sample, warmup 50, patience 4
    config.data.max_train_rows = 2048  # as good as 8,192 rows at half the steps
    for stage in config.stages:
      stage.eval_every = 64
      if stage.name == "fece":  # the mapper was still rising after one pass
        stage.num_epochs, stage.max_steps = 2, 512
      else:
        stage.max_steps = 256
        stage.optimizer.lr = 3e-4  # the paper's best LoRA lr (its Fig. 3); 1e-3 peaked mid-stage, then fell
  if arg.paper:
    llm_config.paper(config, epochs=200)  # CoLLM's stage settings: 200 epochs of 50 iterations
  return llm_config.tiny(config) if arg.tiny else config

