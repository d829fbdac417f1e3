"""python launch/train.py --config=configs/tallrec_ml100k.py --workdir=/tmp/jaxrec-tallrec-ml100k

TALLRec on ML-100K (embedded default data): text-only prompt, LoRA r=8 on q/v of SmolLM2-135M (first 4 layers),
one stage of 48 steps of 8 prompts. Not run here yet (the CoLLM run on the same data is configs/ml100k.py).
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("ml100k", arg, cf="none", text_template="tallrec_movie", slot_template="collm_movie")
