"""python launch/train.py --config=configs/baselines/lightgcn.py --workdir=workdirs/lightgcn_ml1m --config.data.root=../shared/data

LightGCN (d=64 as in CoLLM) on CoLLM's ML-1M split: valid AUC 0.6391 / UAUC 0.6212
(warm 0.7068 / 0.6518; valid_small 0.6375 / 0.6371) in ~70 s on 2 CPU cores.
Arg: 'ml1m' (default) or 'bookcrossing' (no user ids there: AUC 0.5 by construction), plus ',tiny' for tests.
"""

from jaxrec.train.cf_config import BASELINES, base_config


def get_config(arg=None):
  return base_config(arg, **BASELINES["lightgcn"])
