"""python launch/train.py --config=configs/baselines/mf.py --workdir=workdirs/mf_ml1m --config.data.root=../shared/data

Matrix factorisation (CoLLM's MF): on CoLLM's ML-1M split by default (d=256, BCE on the labelled rows, validation
AUC each epoch); with 'topk' the recipe tuned for full-catalogue top-K on ML-1M 8:1:1 validation (d=128, softmax
over the whole catalogue, decoupled weight decay). Arg (`jaxrec.train.cf_config`): a dataset ('ml1m' default, 'bookcrossing', 'ml100k',
'amazon_book', 'ml1m_topk', 'synthetic'), 'topk', 'tiny' (tests), e.g. `mf.py:ml1m_topk,topk`.
Measured: benchmarks/results/configs/results.md, benchmarks/results/multiscale/topk_ml1m.md.
"""

from jaxrec.train.cf_config import base_config, parse


def get_config(arg=None):
  if parse(arg).topk:
    config = base_config(
        arg,
        model=dict(name="mf", embed_dim=128, init_std=0.1,
                   loss="softmax", n_negatives=-1),  # softmax over all items (BPR with 8 negatives: 0.2251)
        lr=2e-3,
        weight_decay=0.5,  # decoupled; 0.1 overfits by epoch 10, 1.0 (lr 3e-3) underfits (tuned under BPR)
        num_epochs=40,  # the cosine's length; early stopping (patience 5) ended ML-1M at 31 (best 26)
        batch_size=4096)
    return config
  return base_config(
      arg,
      model=dict(name="mf", embed_dim=256, init_std=0.1),  # CoLLM's MF width
      lr=1e-2,
      weight_decay=3.0,  # strong decoupled decay, chosen on ML-1M valid AUC (1e-3 overfits)
      num_epochs=50)  # an upper bound: early stopping (patience 5) ends it
