"""python launch/train.py --config=configs/baselines/itemknn.py:ml1m_topk,topk --workdir=workdirs/topk/itemknn --config.data.root=../shared/data

ItemKNN (cosine, as RecBole's): an item's score is the sum of its cosine similarities to the user's training items,
each item keeping its 100 nearest neighbours; fitted in closed form (`jaxrec.cf.closed_form`), no stages. Arg as in
configs/baselines/mf.py.
"""

from jaxrec.train.cf_config import base_config


def get_config(arg=None):
  return base_config(arg, model=dict(name="itemknn", neighbours=100, shrink=0.0))  # RecBole's defaults
