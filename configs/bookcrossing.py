"""python launch/train.py --config=configs/bookcrossing.py --workdir=workdirs/collm_bx --config.data.root=../shared/data

RESULT_BX
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("bookcrossing", arg, cf="sasrec", text_template="tallrec_book", slot_template="collm_bookcrossing")
