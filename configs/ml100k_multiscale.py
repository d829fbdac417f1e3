"""python launch/train.py --config=configs/ml100k_multiscale.py --workdir=workdirs/ms_ml100k

Multi-scale LoRA recommender (configs/ml1m_multiscale.py's recipe) on ML-100K (time-ordered 8:1:1, positives =
rating >= 4): 100 training users × their 8 latest positives (50 steps of 16, one epoch), all validation users with
a positive. CF baselines for results.md: `configs/baselines/<m>.py:ml100k,topk --workdir=workdirs/cf100k/<m>`.
Ablations, seeds and lr / heads sweeps: `python launch/sweep.py --config=configs/ml100k_multiscale.py
--workdir=workdirs/ms100k --sweep=ablations` (benchmarks/results/multiscale/results.md).
Args as in configs/ml1m_multiscale.py. Measured: benchmarks/results/configs/results.md.
"""

from jaxrec.config_util import sibling_config
from jaxrec.data import get_data_config
from jaxrec.train import multiscale_config


def get_config(arg=None):
  arg = multiscale_config.parse(arg)
  config = sibling_config(__file__, "ml1m_multiscale.py")
  config.data = get_data_config("ml100k")
  config.budget = dict(train_users=100, eval_users=-1, rows_per_user=8)
  config.report.baselines = {"MF (BPR)": "workdirs/cf100k/mf", "LightGCN": "workdirs/cf100k/lightgcn",
                             "SASRec": "workdirs/cf100k/sasrec"}
  return multiscale_config.finish(config, arg)
