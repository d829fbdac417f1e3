"""python launch/train.py --config=configs/baselines/pop.py:ml1m_topk,topk --workdir=workdirs/topk/pop --config.data.root=../shared/data

Most popular: every user gets the items ranked by their training frequency (seen ones masked). The reference every
top-K figure must be read against (`jaxrec.cf.closed_form`), no stages. Arg as in configs/baselines/mf.py.
"""

from jaxrec.train.cf_config import base_config


def get_config(arg=None):
  return base_config(arg, model=dict(name="pop"))
