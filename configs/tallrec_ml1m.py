"""python launch/train.py --config=configs/tallrec_ml1m.py --workdir=workdirs/tallrec_ml1m --config.data.root=../shared/data

TALLRec on CoLLM's ML-1M split: the text-only movie prompt → SmolLM2-135M (first 4 layers) with LoRA r=8 on q/v,
softmax over "Yes" / "No"; its final figures are paired with MF's on the same rows. One LoRA stage, the same 2-core CPU budget as configs/ml1m.py (~10 min with the whole-split
final evaluation). Args: `tiny` (random 2-layer LLM: tests), `long` (~1 h on 2 cores: `llm_config.long`), `paper`
(CoLLM's TALLRec settings, all layers and rows, for accelerators: `llm_config.paper`). Measured:
benchmarks/results/configs/results.md.
"""

from jaxrec.config_util import parse_arg, sibling_config
from jaxrec.models import tallrec_config
from jaxrec.train import llm_config
from jaxrec.train.config import stage_config


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, long=False, paper=False)
  config = llm_config.defaults()
  # configs/ml1m.py's data and budget (1,024 training rows, 256-row validation sample, 10 history titles), so the
  # text-only model and CoLLM-FaissRet are trained and compared on the same rows.
  config.data = sibling_config(__file__, "ml1m.py").data
  config.model = tallrec_config(
      template="tallrec_movie",  # text only: no ID slots, no CF model
      keep_layers=4,  # the first 4 of SmolLM2's 30 layers (CPU budget)
      lora=dict(rank=8, alpha=16.0, dropout=0.05))  # on q_proj / v_proj
  config.batch_size = 8
  config.stages = [stage_config(
      name="lora", trainable=["lora/.*"],
      num_epochs=3, max_steps=48,  # 48 steps of 8 prompts
      eval_every=12,  # validation AUC on the 256-row sample
      optimizer=dict(lr=1e-3, weight_decay=1e-3, warmup_steps=20, schedule="cosine"),
      early_stopping=dict(metric="auc", mode="max", patience=3))]
  # TALLRec builds on no CF model; its final figures are paired with MF's on the same rows (trained first into
  # <workdir>/cf, ~30 s), as CoLLM-FaissRet's are with its own CF model
  config.eval = dict(split="valid_small", final_splits=("valid", "valid_small"), reference_cf="train")
  config.cf_train = sibling_config(__file__, "baselines/mf.py", "ml1m")
  if arg.long:
    llm_config.long(config)  # ~1 h on 2 cores: 8,192 rows, one pass
  if arg.paper:
    llm_config.paper(config, epochs=1000)  # CoLLM's TALLRec baseline: max_epoch 1000 of 50 iterations
  return llm_config.tiny(config) if arg.tiny else config
