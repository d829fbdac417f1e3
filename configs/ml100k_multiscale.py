"""python launch/train.py --config=configs/ml100k_multiscale.py --workdir=workdirs/ms_ml100k

Multi-scale LoRA recommender (issue #7) on ML-100K (time-ordered 8:1:1, positives = rating >= 4), SmolLM2-135M cut
to its first 3 layers (K = 3 groups of 1), 5 history titles, 100 training users × their 8 latest positives (50 steps
of 16, one epoch), all 186 validation users with a positive: valid P@10 0.1102, R@10 0.0343, NDCG@10 0.1221,
Cov@10 0.0166; P@20 0.0852, R@20 0.0588, NDCG@20 0.1069, Cov@20 0.0369 (466 s on 2 shared CPU cores). MF / LightGCN
(BPR, d=64, full train split) on the same split: NDCG@10 0.0976 / 0.1032, Cov@10 0.43 / 0.31.
Args: ',tiny' (random 3-layer LLM, 8 users, 2 steps: tests) and one ablation of `jaxrec.train.multiscale_config`
(single, k1, k2, k3, lam0, mean, beta0, bpr, fixedm), e.g. `ml100k_multiscale.py:tiny` or `:lam0`.
Budget knobs: --config.budget.train_users / eval_users / rows_per_user, --config.model.user.max_history,
--config.model.keep_layers.
"""

from jaxrec.train.multiscale_config import base_config


def get_config(arg=None):
  return base_config("ml100k", arg, budget=dict(train_users=100, eval_users=-1, rows_per_user=8), keep_layers=3,
                     lr=1e-3, num_epochs=1, batch_size=16, eval_every=25, warmup_steps=5,
                     model={"user": {"max_history": 5}, "item": {"max_tokens": 16}, "loss": {"n_negatives": 16}})
