"""python launch/train.py --config=configs/ml100k_multiscale.py --workdir=workdirs/ms_ml100k

Multi-scale LoRA recommender (issue #7) on ML-100K (time-ordered 8:1:1, positives = rating >= 4), SmolLM2-135M cut
to its first 3 layers (K = 3 groups of 1), 5 history titles, 100 training users × their 8 latest positives (50 steps
of 16, one epoch), all 186 validation users with a positive, scale / item vectors centred, popularity prior γ = 1:
valid P@10 0.1382, R@10 0.0524, NDCG@10 0.1475, Cov@10 0.0987; P@20 0.1172, R@20 0.0845, NDCG@20 0.1407,
Cov@20 0.1385 (~7 min on 2 shared CPU cores); over seeds 0-2 NDCG@10 0.1435 (sd 0.0212). Without centring and
prior (`:nocenter`, the first runs' model) NDCG@10 0.1221 but Cov@10 0.0166 (everyone gets the same items). On the
same split (full train split, `configs/baselines/<m>.py:ml100k,topk --workdir=workdirs/cf100k/<m>`): MF NDCG@10
0.0928 / Cov@10 0.2229, LightGCN 0.1120 / 0.2883, SASRec 0.1962 / 0.0452 (early-stopped, best epoch 2 of 7), most
popular 0.2222 / 0.0315. Ablations, seeds and lr / heads sweeps: benchmarks/results/multiscale/results.md
(`python launch/sweep.py --config=configs/ml100k_multiscale.py --workdir=workdirs/ms100k --sweep=ablations`).
Args: ',tiny' (random 3-layer LLM, 8 users, 2 steps: tests) and one ablation of `jaxrec.train.multiscale_config`
(single, k1, k2, k3, lam0, mean, beta0, bpr, fixedm, nocenter, noprior), e.g. `ml100k_multiscale.py:tiny` or `:lam0`.
Budget knobs: --config.budget.train_users / eval_users / rows_per_user, --config.model.user.max_history,
--config.model.keep_layers.
"""

from jaxrec.train.multiscale_config import base_config, parse_arg


BASELINES = {"MF (BPR)": "workdirs/cf100k/mf", "LightGCN": "workdirs/cf100k/lightgcn", "SASRec": "workdirs/cf100k/sasrec"}


def get_config(arg=None):
  config = base_config("ml100k", arg, budget=dict(train_users=100, eval_users=-1, rows_per_user=8), keep_layers=3,
                       lr=1e-3, num_epochs=1, batch_size=16, eval_every=-1, warmup_steps=5,
                       model={"user": {"max_history": 5}, "item": {"max_tokens": 16}, "loss": {"n_negatives": 16}})
  if not parse_arg(arg)[0]:  # not ':tiny': results.md reads their metrics.json when those runs exist
    config.report.baselines = dict(BASELINES)
  return config
