"""Re-ranking throughput: users/s when the LLM scores each user's K retrieved candidates, shared prompt prefix vs
every prompt alone, in the same run.

  python benchmarks/rerank.py --data_root=../shared/data                # K = 20, 50, 100; 4 and 30 layers
  python benchmarks/rerank.py --data_root=../shared/data --ks=50 --layers=4 --users=8

The scorer is the re-ranking one of `launch/recommend.py --llm=smollm2`: zero-shot TALLRec on SmolLM2-135M (its
first --layers layers), the movie prompt with the user's last 10 liked titles and the candidate's title. Users are
ML-1M CoLLM validation users (a seeded sample), each with K candidates drawn from the catalogue; a user's K prompts
share everything up to the candidate's title. Per prompt: the K prompts as one left-padded batch. Shared: the
prefix once, its keys / values reused by the K suffixes (`jaxrec.models.prefix`). Every user is scored once untimed
first (compiles the shapes they need, as a warm server has them), then timed; scores of both paths are compared
(max |ΔP|).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data_root", default=os.environ.get("JAXREC_DATA", "../shared/data"))
  p.add_argument("--ks", default="20,50,100")
  p.add_argument("--layers", default="4,30")
  p.add_argument("--users", default="6,2", help="timed users per layer count (one value for all)")
  p.add_argument("--output", default="")
  args = p.parse_args()

  import numpy as np

  from jaxrec.data import get_data_config, load_dataset
  from jaxrec.index.llm_scorer import make_llm_scorer

  cfg = get_data_config("ml1m_collm")
  cfg.root = args.data_root
  ds = load_dataset(cfg)
  split = ds["valid"]
  rng = np.random.RandomState(0)
  layer_list = [int(x) for x in args.layers.split(",")]
  user_counts = [int(x) for x in args.users.split(",")] * (len(layer_list) if "," not in args.users else 1)
  print(f"LLM re-ranking of K candidates per user, SmolLM2-135M zero-shot TALLRec, f32; {_common.machine()}")
  print(f"{'layers':>6} {'K':>4} {'users':>5} {'per-prompt users/s':>18} {'shared users/s':>14} {'speed-up':>8} "
        f"{'max|ΔP|':>8}")
  rows = []
  for layers, n_users in zip(layer_list, user_counts):
    scorer = make_llm_scorer("smollm2", ds.item_text, cfg, cfg.name, keep_layers=layers)
    picks = rng.choice(len(split.user), n_users + 1, replace=False)
    for k in (int(x) for x in args.ks.split(",")):
      def pairs_of(r):
        return dict(user=np.full(k, split.user[r]), item=rng.randint(1, ds.n_items + 1, k),
                    history=np.repeat(split.history[r:r + 1], k, 0),
                    history_label=np.repeat(split.history_label[r:r + 1], k, 0))

      users = [pairs_of(r) for r in picks[1:]]
      times, scores = {}, {}
      for shared in (False, True):
        for u in users:  # compiles each prompt shape these users need: a server has them warm
          scorer(u, shared=shared)
        t0 = time.perf_counter()
        scores[shared] = [scorer(u, shared=shared) for u in users]
        times[shared] = time.perf_counter() - t0
      diff = max(float(np.max(np.abs(a - b))) for a, b in zip(scores[True], scores[False]))
      ups = {s: n_users / t for s, t in times.items()}
      rows.append(dict(layers=layers, k=k, users=n_users, per_prompt_users_per_s=ups[False],
                       shared_users_per_s=ups[True], speedup=ups[True] / ups[False], max_abs_dp=diff))
      print(f"{layers:>6} {k:>4} {n_users:>5} {ups[False]:18.3f} {ups[True]:14.3f} {ups[True] / ups[False]:7.2f}× "
            f"{diff:8.1e}")
  if args.output:
    with open(args.output, "w") as f:
      json.dump({"machine": _common.machine(), "args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
  main()
