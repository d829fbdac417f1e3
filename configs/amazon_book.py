"""python launch/train.py --config=configs/amazon_book.py --workdir=workdirs/collm_amazon --config.data.root=DIR_WITH_amazon-book

RESULT_AMAZON
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("amazon_book", arg, cf="mf", text_template="tallrec_book_collm", slot_template="collm_book")
