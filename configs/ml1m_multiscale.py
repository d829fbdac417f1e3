"""python launch/train.py --config=configs/ml1m_multiscale.py --workdir=workdirs/ms_ml1m --config.data.root=../shared/data

Multi-scale LoRA recommender on ML-1M (per-user seeded 8:1:1 of all ratings as implicit feedback, the paper's
setting; histories in file order, the shared copy has no timestamps) at a 2-core CPU budget (~4 min): SmolLM2-135M
cut to its first 3 layers (K = 3 groups of 1), 5 history titles, 200 training users × their 4 latest items, 300
sampled validation users, centred vectors, popularity prior γ = 1. Its results.md sets it beside the CF baselines
trained on the same users:
  python launch/train.py --config=configs/baselines/mf.py:ml1m_topk,topk --workdir=workdirs/cf1m_u300/mf \
      --config.data.root=../shared/data --config.eval.users=300      (and lightgcn.py, sasrec.py)
then `python launch/report.py --workdir=workdirs/ms_ml1m` rewrites results.md beside them.
Args: `tiny` (random 3-layer LLM, 8 users, 2 steps: tests), `long` (every training user × 6 rows, 2,265 steps,
validated on all users every 500: about an hour alone on 2 CPU cores, the learning curve in metrics.jsonl; the
popularity prior's weight after training: benchmarks/multiscale_prior.py) and one ablation of
`jaxrec.train.multiscale_config`
(single, k1, k2, k3, lam0, mean, beta0, bpr, fixedm, nocenter, noprior), e.g. `:tiny,bpr` or `:mean`.
Measured: benchmarks/results/configs/results.md.
"""

from jaxrec.data import get_data_config
from jaxrec.multiscale.config import model_config
from jaxrec.train import multiscale_config
from jaxrec.train.config import stage_config


def get_config(arg=None):
  arg = multiscale_config.parse(arg)
  config = multiscale_config.defaults()
  config.data = get_data_config("ml1m_topk")
  config.budget = dict(train_users=200,  # users sampled for training (seeded; -1 = all)
                       eval_users=300,  # users sampled for validation (-1 = all)
                       rows_per_user=4)  # each training user's latest positives (-1 = all)
  config.model = model_config(
      keep_layers=3,  # SmolLM2's first 3 layers: K = 3 scales of one layer each
      user=dict(max_history=5),  # history titles in the user text
      item=dict(max_tokens=16),
      loss=dict(n_negatives=16))  # sampled negatives beside the in-batch ones
  config.batch_size = 16
  config.stages = [stage_config(
      name="multiscale", trainable=list(multiscale_config.TRAINABLE),
      num_epochs=1, max_steps=-1,  # one pass: 200 users × 4 rows = 50 steps of 16
      eval_every=-1,  # validate once per epoch
      optimizer=dict(lr=1e-3, weight_decay=0.0, warmup_steps=5, schedule="cosine", grad_clip=1.0),
      early_stopping=dict(metric="ndcg@10", mode="max", patience=3))]
  config.report.baselines = {"MF (BPR)": "workdirs/cf1m_u300/mf", "LightGCN": "workdirs/cf1m_u300/lightgcn",
                             "SASRec": "workdirs/cf1m_u300/sasrec"}
  return multiscale_config.finish(config, arg)
