"""python launch/train.py --config=configs/amazon_book.py --workdir=workdirs/collm_amazon --config.data.root=DIR_WITH_amazon-book

CoLLM-FaissRet (MF) on Amazon-Book in CoLLM's protocol, from the user's raw `amazon-book/` review + metadata JSON
lines under the data root (not available on this machine, so not run here: the data layer is tested on files in
the official format, and `:tiny` builds). Same budget and stages as configs/ml1m.py.
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("amazon_book", arg, cf="mf", text_template="tallrec_book_collm", slot_template="collm_book")
