"""python benchmarks/results/readme/full_valid.py WORKDIR   (WORKDIR: a finished run of configs/ml100k.py)

Full-split valid AUC / UAUC of README's main job (CoLLM-FaissRet, MF) and of its MF model on the same rows,
with 95% bootstrap CIs (1,000 resamples, seed 0: rows for AUC, users for UAUC) and the paired difference."""
import json
import os
import subprocess
import sys
import time

import jax
import jaxlib
import numpy as np

from jaxrec import evaluate as ev, metrics as M
from jaxrec.train import cf_task, llm_task, loop, workdir as run_dir

W = sys.argv[1]
config = run_dir.read_config(W)
config.data.max_eval_rows = -1  # the whole validation split, not the run's 256-row early-stopping sample
runner = llm_task.Runner(config)
params = loop.restore_params(config, W, runner.params)
table = runner.table("valid", llm_task._last_template(config))  # pylint: disable=protected-access
t0 = time.time()
collm = runner.scores(params, table)
t_collm = time.time() - t0
sp = table.split
cf_config = run_dir.read_config(f"{W}/cf")
_, mf, init = cf_task.build_model(cf_config)
mf_params = loop.restore_params(cf_config, f"{W}/cf", init)
logits = jax.jit(mf.logits)
mf_scores = ev.collect_scores(lambda b: logits(mf_params, b), ev.split_arrays(sp), 4096)

user, label = np.asarray(sp.user), np.asarray(sp.label)
rng = np.random.default_rng(0)
B = 1000
row_idx = [rng.integers(0, len(label), len(label)) for _ in range(B)]
users = np.unique(user)
by_user = {u: np.flatnonzero(user == u) for u in users}
user_idx = [rng.integers(0, len(users), len(users)) for _ in range(B)]

def per_user_auc(s):
  out = {}
  for u, rows in by_user.items():
    a = M.auc(label[rows], s[rows])
    if not np.isnan(a):
      out[u] = a
  return out

def stats(s, other=None):
  auc = M.auc(label, s)
  pu = per_user_auc(s)
  uauc = float(np.mean(list(pu.values())))
  boot_auc = [M.auc(label[i], s[i]) for i in row_idx]
  vals = np.array([pu.get(u, np.nan) for u in users])
  boot_uauc = [np.nanmean(vals[i]) for i in user_idx]
  return auc, uauc, np.percentile(boot_auc, [2.5, 97.5]), np.percentile(boot_uauc, [2.5, 97.5]), boot_auc, boot_uauc, vals

a1 = stats(collm); a2 = stats(mf_scores)
d_auc = np.array(a1[4]) - np.array(a2[4]); d_uauc = np.array(a1[5]) - np.array(a2[5])
cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout.split(":")[-1].strip()
out = {"cpu": cpu, "cores": os.cpu_count(), "jaxlib": jaxlib.__version__,
       "rows": int(len(label)), "users": int(len(users)),
       "collm": {"auc": a1[0], "auc_ci": list(a1[2]), "uauc": a1[1], "uauc_ci": list(a1[3])},
       "mf": {"auc": a2[0], "auc_ci": list(a2[2]), "uauc": a2[1], "uauc_ci": list(a2[3])},
       "diff": {"auc": a1[0] - a2[0], "auc_ci": list(np.percentile(d_auc, [2.5, 97.5])),
                "uauc": a1[1] - a2[1], "uauc_ci": list(np.percentile(d_uauc, [2.5, 97.5]))},
       "collm_scoring_s": t_collm, "collm_rows_per_s": len(label) / t_collm}
print(json.dumps(out, indent=2, default=float))
