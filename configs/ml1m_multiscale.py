"""python launch/train.py --config=configs/ml1m_multiscale.py --workdir=workdirs/ms_ml1m --config.data.root=../shared/data

Multi-scale LoRA recommender (issue #7) on ML-1M (per-user seeded 8:1:1 of all ratings as implicit feedback, the
paper's setting), SmolLM2-135M cut to its first 6 layers (K = 3 groups of 2), 10 history titles, 300 training
users × their 20 latest items, 300 validation users: not run yet (no figure to report; the ML-100K budget run in
configs/ml100k_multiscale.py is the measured one).
Args: ',tiny' (random 3-layer LLM, 8 users, 2 steps: tests) and one ablation of `jaxrec.train.multiscale_config`
(single, k1, k2, k3, lam0, mean, beta0, bpr, fixedm), e.g. `ml1m_multiscale.py:tiny` or `:mean`.
Budget knobs: --config.budget.train_users / eval_users / rows_per_user, --config.model.user.max_history,
--config.model.keep_layers.
"""

from jaxrec.train.multiscale_config import base_config


def get_config(arg=None):
  return base_config("ml1m_topk", arg, budget=dict(train_users=300, eval_users=300, rows_per_user=20),
                     keep_layers=6, lr=1e-3, num_epochs=2, batch_size=16)
