"""python launch/train.py --config=configs/baselines/mf.py --workdir=workdirs/mf_ml1m --config.data.root=../shared/data

Matrix factorisation (CoLLM's MF, d=256) on CoLLM's ML-1M split: valid AUC 0.6742 / UAUC 0.6367
(warm rows 0.7359 / 0.6713, cold 0.4944; valid_small 0.6757 / 0.6443) in ~30 s on 2 CPU cores (lr 1e-2 and
strong decoupled weight decay 3.0 chosen on valid: wd 1e-3 gave 0.607, 0.3 gave 0.645, 10 gave 0.669).
CoLLM reports MF test AUC 0.6482 / UAUC 0.6361. Arg: 'ml1m' (default) or 'bookcrossing' (no user ids there, so
MF scores every row 0: AUC 0.5 by construction), plus ',tiny' for tests, e.g. `mf.py:ml1m,tiny`.
"""

from jaxrec.train.cf_config import BASELINES, base_config


def get_config(arg=None):
  return base_config(arg, **BASELINES["mf"])
