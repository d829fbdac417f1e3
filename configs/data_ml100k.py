"""python launch/prepare_data.py --config=configs/data_ml100k.py --config.data.root=../shared/data

Prints one table row per split (rows, users, items, positive rate, warm share, mean history length, prompt tokens
mean / p95) for ML-100K in CoLLM's protocol (time-ordered 8:1:1, label rating >= 4), fetched and cached on first use.
"""

import ml_collections

from jaxrec.data import get_data_config


def get_config(arg=None):
  del arg
  return ml_collections.ConfigDict(dict(data=get_data_config("ml100k")))
