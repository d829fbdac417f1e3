"""python launch/train.py --config=configs/bookcrossing.py --workdir=workdirs/collm_bx --config.data.root=../shared/data

CoLLM-FaissRet on the BookCrossing pool (TALLRec's valid.json: a seeded 64-shot train set, 500 validation records).
Every BookCrossing user is new, so the CF side is a history encoder: SASRec, trained first on the pool outside the
validation records into <workdir>/cf, encodes each user's history; the mapper writes it and the target book's
vector into the slots of the Alpaca-style book prompt. configs/ml1m.py's recipe otherwise (the 64 shots give 8
steps an epoch, so a stage is 3 epochs = 24 steps). UAUC is not meaningful: the data has no user ids.
Args: `tiny`, `collm_order`, `long`, `paper` (configs/ml1m.py's). Measured: benchmarks/results/configs/results.md.
"""

from jaxrec.config_util import parse_arg, sibling_config
from jaxrec.train import llm_config


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, collm_order=False, long=False, paper=False)
  config = sibling_config(__file__, "ml1m.py", f"collm_order={arg.collm_order},long={arg.long},paper={arg.paper}")
  llm_config.use_data(config, "bookcrossing")  # one validation split: valid
  config.model.template = "collm_bookcrossing"
  config.model.cf.name = "sasrec"  # a history encoder: BookCrossing's users have no trained ids
  for stage in config.stages:
    if stage.template:  # collm_order's text-only stage
      stage.template = "tallrec_book"
  config.cf_train = sibling_config(__file__, "baselines/sasrec.py", "bookcrossing")
  return llm_config.tiny(config) if arg.tiny else config
