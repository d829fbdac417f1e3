"""python launch/train.py --config=configs/baselines/din.py --workdir=workdirs/din_ml1m --config.data.root=../shared/data

DIN (target attention over the last 50 history items on ML-1M, 20 elsewhere, d=64) on CoLLM's ML-1M split. It
scores from the history alone, so it also serves users unseen in training. Arg as in configs/baselines/mf.py.
Measured: benchmarks/results/configs/results.md.
"""

from jaxrec.train.cf_config import base_config


def get_config(arg=None):
  config = base_config(
      arg,
      model=dict(name="din", embed_dim=64,
                 max_len=-1,  # -1: the data's history length (capped at 20 for the CF baselines)
                 attn_hidden=[80, 40], mlp_hidden=[200, 80], init_std=0.1),
      lr=1e-3,
      weight_decay=1.0,  # decoupled (AdamW); 1e-2 overfit by epoch 5
      num_epochs=15)
  if config.data.name == "ml1m_collm":
    config.data.max_history = 50  # 50 most recent items, not the CF baselines' 20: +0.013 valid AUC (paired CI)
  return config
