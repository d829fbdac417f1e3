"""python launch/train.py --config=configs/tallrec_ml1m.py --workdir=workdirs/tallrec_ml1m --config.data.root=../shared/data

TALLRec: the text-only movie prompt → SmolLM2-135M (first 4 layers) with LoRA r=8 on q/v, softmax over "Yes"/"No".
One LoRA stage of 48 steps of 8 prompts, lr 1e-3, validation every 12 steps on 256 rows of valid_small. ~6 min on 2
busy CPU cores. Gives valid_small AUC 0.5673 / UAUC 0.5412 and valid 0.4717 / 0.4450: at this budget the text-only
model learns nearly nothing (MF on the same rows: 0.6990 / 0.6811). Arg: ':tiny' for tests.
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("ml1m_collm", arg, cf="none", text_template="tallrec_movie", slot_template="collm_movie")
