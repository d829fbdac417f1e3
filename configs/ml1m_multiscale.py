"""python launch/train.py --config=configs/ml1m_multiscale.py --workdir=workdirs/ms_ml1m --config.data.root=../shared/data

Multi-scale LoRA recommender (issue #7) on ML-1M (per-user seeded 8:1:1 of all ratings as implicit feedback, the
paper's setting; histories in file order, the shared copy has no timestamps), at a 2-core CPU budget: SmolLM2-135M
cut to its first 3 layers (K = 3 groups of 1), 5 history titles, 200 training users × their 4 latest items (50 steps
of 16, one epoch), 300 sampled validation users, centred vectors, popularity prior γ = 1: valid P@10 0.0567,
R@10 0.0409, NDCG@10 0.0700 ± 0.0071 (standard error over users), Cov@10 0.0486; P@20 0.0482, R@20 0.0694,
NDCG@20 0.0720, Cov@20 0.0761 (230 s, 1.8 GB peak RSS). A 10× larger budget (--config.budget.train_users=1000
--config.budget.rows_per_user=8 --config.stages[0].eval_every=100) peaks at step 100: NDCG@10 0.0787 ± 0.0070,
Cov@10 0.0496, then falls (0.052-0.056 at steps 200-400) as coverage rises; lr 3e-3 at that budget ends at 0.0499.
On the same 300 users (CF runs train on the whole split; commands below): most popular 0.1052, MF 0.0864, LightGCN
0.1399, SASRec 0.0298 (2 epochs; file-order histories carry little sequence). Tables:
benchmarks/results/multiscale/results.md. CF baselines for results.md (config.report.baselines reads these):
  python launch/train.py --config=configs/baselines/mf.py:ml1m_topk,topk --workdir=workdirs/cf1m_u300/mf \
      --config.data.root=../shared/data --config.eval.users=300      (and lightgcn.py, sasrec.py)
then `python launch/report.py --workdir=workdirs/ms_ml1m` rewrites results.md beside them.
CPU budget knobs: --config.budget.train_users / eval_users / rows_per_user, --config.model.user.max_history,
--config.model.keep_layers, --config.stages[0].num_epochs.
Args: ',tiny' (random 3-layer LLM, 8 users, 2 steps: tests) and one ablation of `jaxrec.train.multiscale_config`
(single, k1, k2, k3, lam0, mean, beta0, bpr, fixedm, nocenter, noprior), e.g. `ml1m_multiscale.py:tiny` or `:mean`.
"""

from jaxrec.train.multiscale_config import base_config, parse_arg

BASELINES = {"MF (BPR)": "workdirs/cf1m_u300/mf", "LightGCN": "workdirs/cf1m_u300/lightgcn",
             "SASRec": "workdirs/cf1m_u300/sasrec"}


def get_config(arg=None):
  config = base_config("ml1m_topk", arg, budget=dict(train_users=200, eval_users=300, rows_per_user=4),
                       keep_layers=3, lr=1e-3, num_epochs=1, batch_size=16, eval_every=-1, warmup_steps=5,
                       model={"user": {"max_history": 5}, "item": {"max_tokens": 16}, "loss": {"n_negatives": 16}})
  if not parse_arg(arg)[0]:  # not ':tiny': results.md reads their metrics.json when those runs exist
    config.report.baselines = dict(BASELINES)
  return config
