"""(Re)builds the Faiss index of a finished CF run's item embeddings and stores it with the run.

  python launch/build_index.py --workdir=workdirs/mf_ml1m
  python launch/build_index.py --workdir=workdirs/mf_ml1m --config=configs/index.py:hnsw --config.hnsw.m=48 \
      --recall_split=valid

Writes <workdir>/index/{index.faiss, item_ids.npy, manifest.json} atomically (the manifest records the run's
config.json and embeddings/item.npy hashes, item count and dimension, so a stale or foreign index is refused when
loaded). --recall_split also measures the index's recall@N against the exact index for that split's users.
Errors print one line `error: ...` and exit with status 2.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxrec.errors import JaxrecError  # noqa: E402
from launch import _cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(_cli.repo_root() / "configs" / "index.py"), "index config, e.g. configs/index.py:ivf")
_WORKDIR = flags.DEFINE_string("workdir", None, "workdir of a finished launch/train.py CF run")
_RECALL_SPLIT = flags.DEFINE_string("recall_split", None, "measure recall@N vs the exact index on this split")


def main(argv):
  logging.set_verbosity(logging.WARNING)
  if len(argv) > 1:
    _cli.fail(f"unexpected arguments {argv[1:]}")
  cfg = _cli.config_value(_CONFIG)
  if not _WORKDIR.value:
    _cli.fail("--workdir is required")
  try:
    from jaxrec import index as I
    index, path = I.build_for_run(_WORKDIR.value, cfg, progress=True)
    device = "GPU" if index.on_gpu else "CPU"
    print(f"built {cfg.kind} index of {index.ntotal} items × {index.vectors.shape[1]} on {device} in "
          f"{index.build_seconds:.2f} s → {path}", flush=True)
    if _RECALL_SPLIT.value:
      _report_recall(I, index, cfg)
  except JaxrecError as e:
    _cli.fail(str(e))


def _report_recall(I, index, cfg) -> None:
  """recall@N of this index against the exact one, for the split's query users (training items excluded)."""
  import time

  import numpy as np

  from jaxrec.index.evaluation import contexts, query_rows

  run = I.load_run(_WORKDIR.value)
  split = run.dataset.splits.get(_RECALL_SPLIT.value)
  if split is None:
    raise JaxrecError(f"--recall_split={_RECALL_SPLIT.value}: not a split of the run's dataset "
                      f"({', '.join(run.dataset.splits)})")
  users, rows, _ = query_rows(split)
  ctx = contexts(split, rows)
  q = run.query_vectors(users, ctx["history"], ctx["history_label"])
  seen = run.seen_items(cfg.retrieve.exclude)
  exclude = [seen.get(int(u), np.zeros(0, np.int64)) for u in users]
  n = int(cfg.retrieve.n)
  exact = I.build(index.vectors, index.item_ids, I.index_config("flat", device=cfg.device))
  timings = {}
  for name, ix in (("exact", exact), (cfg.kind, index)):
    start = time.perf_counter()
    timings[name] = (I.retrieve(ix, q, n, exclude, cfg.retrieve.mode), time.perf_counter() - start)
  recall = I.retrieval_recall(timings[cfg.kind][0].items, timings["exact"][0].items)
  print(f"recall@{n} vs exact on {len(users)} {_RECALL_SPLIT.value} users: {recall:.4f} "
        f"({cfg.kind} {timings[cfg.kind][1]:.3f} s, exact {timings['exact'][1]:.3f} s)", flush=True)


if __name__ == "__main__":
  app.run(main, flags_parser=_cli.parse_flags)
