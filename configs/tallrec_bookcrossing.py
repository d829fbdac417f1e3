"""python launch/train.py --config=configs/tallrec_bookcrossing.py --workdir=workdirs/tallrec_bx --config.data.root=../shared/data

RESULT_TALLREC_BX
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("bookcrossing", arg, cf="none", text_template="tallrec_book", slot_template="collm_bookcrossing")
