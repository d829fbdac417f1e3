"""python launch/prepare_data.py --config=configs/data_amazon_book.py --config.data.root=../shared/data

Prints one table row per split (rows, users, items, positive rate, warm share, mean history length, prompt tokens
mean / p95) for Amazon-Book (2017 reviews) in CoLLM's protocol; needs the raw review + metadata JSON lines.
"""

import ml_collections

from jaxrec.data import get_data_config


def get_config(arg=None):
  del arg
  return ml_collections.ConfigDict(dict(data=get_data_config("amazon_book")))
