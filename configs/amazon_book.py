"""python launch/train.py --config=configs/amazon_book.py --workdir=workdirs/collm_amazon --config.data.root=DIR_WITH_amazon-book

CoLLM-FaissRet (MF) on Amazon-Book in CoLLM's protocol, from the user's raw `amazon-book/` review + metadata JSON
lines under the data root (not on this machine: the data layer is tested on files in the official format, and
`:tiny` builds). configs/ml1m.py's recipe with the book prompts. Args: `tiny`, `collm_order`, `long`, `paper` (configs/ml1m.py's).
"""

from jaxrec.config_util import parse_arg, sibling_config
from jaxrec.train import llm_config


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, collm_order=False, long=False, paper=False)
  config = sibling_config(__file__, "ml1m.py", f"collm_order={arg.collm_order},long={arg.long},paper={arg.paper}")
  llm_config.use_data(config, "amazon_book")
  config.model.template = "collm_book"
  for stage in config.stages:
    if stage.template:  # collm_order's text-only stage
      stage.template = "tallrec_book_collm"
  config.cf_train = sibling_config(__file__, "baselines/mf.py", "amazon_book")
  return llm_config.tiny(config) if arg.tiny else config
