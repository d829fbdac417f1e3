"""python launch/prepare_data.py --config=configs/data_bookcrossing.py --config.data.root=../shared/data

Prints one table row per split (rows, users, items, positive rate, warm share, mean history length, prompt tokens
mean / p95) for TALLRec's BookCrossing pool (2,427 records) and the seeded few-shot train / valid drawn from it.
"""

import ml_collections

from jaxrec.data import get_data_config


def get_config(arg=None):
  del arg
  return ml_collections.ConfigDict(dict(data=get_data_config("bookcrossing")))
