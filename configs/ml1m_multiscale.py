"""python launch/train.py --config=configs/ml1m_multiscale.py --workdir=workdirs/ms_ml1m --config.data.root=../shared/data

Multi-scale LoRA recommender (issue #7) on ML-1M (per-user seeded 8:1:1 of all ratings as implicit feedback, the
paper's setting; histories in file order, the shared copy has no timestamps), at the ML-100K run's CPU budget:
SmolLM2-135M cut to its first 3 layers (K = 3 groups of 1), 5 history titles, 200 training users × their 4 latest
items (50 steps of 16, one epoch), 300 sampled validation users, centred vectors, popularity prior γ = 1.
Not measured yet: the one run (2026-11-22) died loading the dataset cache at 23 GB RSS, a loader bug since fixed
(jaxrec/data/schema.py; the load now takes 1 s at 0.73 GB), and was not restarted in that session.
CPU budget knobs (the defaults fit ~10 min on 2 shared cores): --config.budget.train_users / eval_users /
rows_per_user, --config.model.user.max_history, --config.model.keep_layers, --config.stages[0].num_epochs; e.g. a
larger run: --config.budget.train_users=1000 --config.budget.rows_per_user=20 --config.model.keep_layers=6.
Args: ',tiny' (random 3-layer LLM, 8 users, 2 steps: tests) and one ablation of `jaxrec.train.multiscale_config`
(single, k1, k2, k3, lam0, mean, beta0, bpr, fixedm, nocenter, noprior), e.g. `ml1m_multiscale.py:tiny` or `:mean`.
"""

from jaxrec.train.multiscale_config import base_config


def get_config(arg=None):
  return base_config("ml1m_topk", arg, budget=dict(train_users=200, eval_users=300, rows_per_user=4), keep_layers=3,
                     lr=1e-3, num_epochs=1, batch_size=16, eval_every=-1, warmup_steps=5,
                     model={"user": {"max_history": 5}, "item": {"max_tokens": 16}, "loss": {"n_negatives": 16}})
