"""python launch/train.py --config=configs/baselines/lightgcn.py --workdir=workdirs/lightgcn_ml1m --config.data.root=../shared/data

LightGCN (d=64, 2 propagation layers, as in CoLLM) on CoLLM's ML-1M split; BCE on the labelled rows, validation AUC
each epoch. Arg as in configs/baselines/mf.py ('ml1m' default, 'bookcrossing', ..., 'topk', 'tiny').
Measured: benchmarks/results/configs/results.md.
"""

from jaxrec.train.cf_config import base_config


def get_config(arg=None):
  return base_config(
      arg,
      model=dict(name="lightgcn", embed_dim=64, num_layers=2, init_std=0.1),
      lr=1e-3,
      weight_decay=1.0,
      num_epochs=50)  # an upper bound: early stopping (patience 5) ends it
