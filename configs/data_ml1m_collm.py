"""python launch/prepare_data.py --config=configs/data_ml1m_collm.py --config.data.root=../shared/data

Prints one table row per split (rows, users, items, positive rate, warm share, mean history length, prompt tokens
mean / p95) for CoLLM's ML-1M split (train 33,891 rows / 740 users, valid 10,401, valid_small 5,200).
"""

import ml_collections

from jaxrec.data import get_data_config


def get_config(arg=None):
  del arg
  return ml_collections.ConfigDict(dict(data=get_data_config("ml1m_collm")))
