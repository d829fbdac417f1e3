"""python launch/prepare_data.py --config=configs/data_ml1m_topk.py --config.data.root=../shared/data

Prints one table row per split (rows, users, items, positive rate, warm share, mean history length, prompt tokens
mean / p95) for ML-1M's seeded per-user 8:1:1 split of implicit interactions for top-K ranking.
"""

import ml_collections

from jaxrec.data import get_data_config


def get_config(arg=None):
  del arg
  return ml_collections.ConfigDict(dict(data=get_data_config("ml1m_topk")))
