"""python launch/train.py --config=configs/baselines/lightgcn.py --workdir=workdirs/lightgcn_ml1m --config.data.root=../shared/data

LightGCN on CoLLM's ML-1M split by default (d=64, 2 propagation layers, as in CoLLM; BCE on the labelled rows,
validation AUC each epoch); with 'topk' the recipe measured best so far for full-catalogue top-K on ML-1M 8:1:1
validation (d=128, softmax over the whole catalogue, L2 5e-3 on the batch's embeddings, lr 1e-2, batch 8,192: one
propagation over the whole graph per step). Arg as in
configs/baselines/mf.py. Measured: benchmarks/results/configs/results.md, benchmarks/results/multiscale/topk_ml1m.md.
"""

from jaxrec.train.cf_config import base_config, parse


def get_config(arg=None):
  if parse(arg).topk:
    return base_config(
        arg,
        model=dict(name="lightgcn", embed_dim=128, num_layers=2, init_std=0.1,
                   loss="softmax", n_negatives=-1,  # softmax over all items (BPR, 8 negatives: 0.2142)
                   reg=5e-3),  # L2 on the row's user and positive layer-0 embeddings: 1e-3 overfits by epoch 6
        lr=1e-2,  # 2e-3 (with decoupled decay 0.5) crept to 0.1976 in 40 epochs (BPR); 5e-3 is slower than 1e-2
        weight_decay=0.0,  # no decoupled decay: it shrank every node embedding each step
        num_epochs=15,  # the cosine's length
        batch_size=8192)  # fewer steps, so fewer whole-graph propagations per epoch
  return base_config(
      arg,
      model=dict(name="lightgcn", embed_dim=64, num_layers=2, init_std=0.1),
      lr=1e-3,
      weight_decay=1.0,
      num_epochs=50)  # an upper bound: early stopping (patience 5) ends it
