"""python launch/train.py --config=configs/ml100k.py --workdir=/tmp/jaxrec-ml100k

RESULT_ML100K
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("ml100k", arg, cf="mf", text_template="tallrec_movie", slot_template="collm_movie")
