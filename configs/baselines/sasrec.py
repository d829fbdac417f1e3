"""python launch/train.py --config=configs/baselines/sasrec.py --workdir=workdirs/sasrec_ml1m --config.data.root=../shared/data

SASRec (2 causal self-attention blocks, d=64, last 20 history items) on CoLLM's ML-1M split: valid AUC 0.6624 / UAUC 0.6496
(warm 0.6643, cold 0.6591; valid_small 0.6528 / 0.6451) in ~7 min on 2 busy CPU cores.
It scores from the history alone, so it also serves users unseen in training. Arg: 'ml1m' (default) or
'bookcrossing', plus ',tiny' for tests.
"""

from jaxrec.train.cf_config import BASELINES, base_config


def get_config(arg=None):
  return base_config(arg, **BASELINES["sasrec"])
