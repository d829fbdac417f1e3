"""python launch/train.py --config=configs/baselines/sasrec.py --workdir=workdirs/sasrec_ml1m --config.data.root=../shared/data

SASRec (2 causal self-attention blocks, d=64, the last 20 history items) on CoLLM's ML-1M split. It scores from the
history alone, so it also serves users unseen in training (BookCrossing's CoLLM config uses it as its CF source).
Arg as in configs/baselines/mf.py. Measured: benchmarks/results/configs/results.md.
"""

from jaxrec.train.cf_config import base_config


def get_config(arg=None):
  return base_config(
      arg,
      model=dict(name="sasrec", embed_dim=64, num_layers=2, num_heads=1,
                 max_len=-1,  # -1: the data's history length (capped at 20 for the CF baselines)
                 dropout=0.2, init_std=0.1),
      lr=1e-3,
      weight_decay=1e-2,
      num_epochs=10)
