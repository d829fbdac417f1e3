"""python launch/train.py --config=configs/baselines/mf.py --workdir=workdirs/mf_ml1m --config.data.root=../shared/data

Matrix factorisation (CoLLM's MF, d=256) on CoLLM's ML-1M split; BCE on the labelled rows, validation AUC each
epoch. Arg (`jaxrec.train.cf_config`): a dataset ('ml1m' default, 'bookcrossing', 'ml100k', 'amazon_book',
'ml1m_topk', 'synthetic'), 'topk' (BPR, full-catalogue top-K), 'tiny' (tests), e.g. `mf.py:ml100k,topk`.
Measured: benchmarks/results/configs/results.md.
"""

from jaxrec.train.cf_config import base_config


def get_config(arg=None):
  return base_config(
      arg,
      model=dict(name="mf", embed_dim=256, init_std=0.1),  # CoLLM's MF width
      lr=1e-2,
      weight_decay=3.0,  # strong decoupled decay, chosen on ML-1M valid AUC (1e-3 overfits)
      num_epochs=50)  # an upper bound: early stopping (patience 5) ends it
