"""python launch/train.py --config=configs/tallrec_ml100k.py --workdir=/tmp/jaxrec-tallrec-ml100k

RESULT_TALLREC_ML100K
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("ml100k", arg, cf="none", text_template="tallrec_movie", slot_template="collm_movie")
