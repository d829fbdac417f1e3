"""python launch/train.py --config=configs/tallrec_ml100k.py --workdir=/tmp/jaxrec-tallrec-ml100k

TALLRec (configs/tallrec_ml1m.py's recipe) on ML-100K, the embedded default data. Arg: `tiny` (tests).
"""

from jaxrec.config_util import parse_arg, sibling_config
from jaxrec.train import llm_config


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False)
  config = llm_config.use_data(sibling_config(__file__, "tallrec_ml1m.py"), "ml100k")
  config.cf_train = sibling_config(__file__, "baselines/mf.py", "ml100k")  # the CF reference (configs/ml100k.py's MF)
  return llm_config.tiny(config) if arg.tiny else config
