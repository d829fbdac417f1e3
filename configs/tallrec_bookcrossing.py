"""python launch/train.py --config=configs/tallrec_bookcrossing.py --workdir=workdirs/tallrec_bx --config.data.root=../shared/data

TALLRec (configs/tallrec_ml1m.py's recipe) on the BookCrossing pool (TALLRec's valid.json: a seeded 64-shot train
set, 500 validation records), with TALLRec's Alpaca-style book prompt. UAUC is not meaningful: the data has no
user ids. Arg: `tiny` (tests). Measured: benchmarks/results/configs/results.md.
"""

from jaxrec.config_util import parse_arg, sibling_config
from jaxrec.train import llm_config


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False)
  config = llm_config.use_data(sibling_config(__file__, "tallrec_ml1m.py"), "bookcrossing")
  config.model.template = "tallrec_book"
  # the CF reference: configs/bookcrossing.py's SASRec over the history's titles (MF scores every row alike here)
  config.cf_train = sibling_config(__file__, "baselines/sasrec.py", "bookcrossing")
  return llm_config.tiny(config) if arg.tiny else config
