"""python launch/train.py --config=configs/baselines/din.py --workdir=workdirs/din_ml1m --config.data.root=../shared/data

DIN (target attention over the last 20 history items, d=64) on CoLLM's ML-1M split: valid AUC 0.6693 / UAUC 0.6646
(warm 0.6730, cold 0.6635; valid_small 0.6612 / 0.6712) in ~2 min on 2 CPU cores (best at epoch 5).
It scores from the history alone, so it also serves users unseen in training. Arg: 'ml1m' (default) or
'bookcrossing', plus ',tiny' for tests.
"""

from jaxrec.train.cf_config import BASELINES, base_config


def get_config(arg=None):
  return base_config(arg, **BASELINES["din"])
