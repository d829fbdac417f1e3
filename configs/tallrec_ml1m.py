"""python launch/train.py --config=configs/tallrec_ml1m.py --workdir=workdirs/tallrec_ml1m --config.data.root=../shared/data

RESULT_TALLREC_ML1M
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("ml1m_collm", arg, cf="none", text_template="tallrec_movie", slot_template="collm_movie")
