"""Faiss retrieval: exact scan vs IVF vs HNSW, and retrieve-then-rerank vs LLM scoring of every item.

  python benchmarks/retrieval.py --skip_real --sizes=1000000 --dims=64 --llm=''    # 1M × 64, random + clustered
  python benchmarks/retrieval.py --skip_real --sizes=1000000 --dims=256 --hnsw_max_n=100000 --llm=''  # no HNSW
  python benchmarks/retrieval.py --sizes=100000 --dims=64 --llm_users=1            # a quick check
  python benchmarks/retrieval.py --workdir=workdirs/mf_ml1m                        # a trained CF run's embeddings

Catalogues: the real ML-1M item embeddings (CoLLM split; a trained CF run's with --workdir, else a quick MF trained
here), queried with its users' vectors; and synthetic catalogues of --sizes items × --dims, 'random' (i.i.d.
Gaussian: no structure, the hardest case for IVF and HNSW) and 'clustered' (a Gaussian mixture of sqrt(n)
components, closer to real embeddings), queried with --queries vectors from the same distribution.

Speed is queries per CPU-second of one batched search of all queries on --search_threads (1) thread: CPU time, not
wall time, because the machine is shared and contention moves wall times by 2-5x between runs; one thread, because
OpenMP threads spin while waiting for a descheduled sibling. The exact scan is IndexFlatIP through BLAS (see
jaxrec.index.faiss_index.BLAS_THRESHOLD: Faiss's own threshold scans 1000 queries at d = 64 one by one, 18x slower,
which flattered every approximate index here before). Builds use --threads and report wall seconds.
Per catalogue: build s, queries/s, recall@n against the exact scan, for IVF (nlist 4·sqrt(n), k-means on
--ivf_train × nlist sampled items) at each --nprobes and HNSW at each --efs, up to --hnsw_max_n items (HNSW M=32
efC=100 took 16-28 min to build on 1M × 64 on 2 shared cores, 10-20x the IVF; 1M × 256 was left out, est. ~1 h);
sweeps stop once recall@n >= --stop_recall. Then a SUMMARY line per catalogue: the fastest setting with
recall@n >= --target_recall and its speedup; issue #6's target is >= 10x the exact scan at recall@50 >= 0.95 on 1M
items (benchmarks/results/retrieval_1m.txt: met on clustered catalogues, missed on i.i.d. Gaussian ones).
Then end to end on ML-1M: users/s of retrieve-then-rerank (top-N candidates scored by the LLM, --llm) vs the LLM
scoring every item (extrapolated from its measured prompts/s unless --full_users).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import numpy as np  # noqa: E402


def _ints(s: str) -> list[int]:
  return [int(x) for x in s.split(",") if x]


def synthetic(n: int, d: int, n_queries: int, kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(items [n, d], queries [q, d]) float32."""
  rng = np.random.default_rng(seed)
  if kind == "random":
    return (rng.standard_normal((n, d), np.float32), rng.standard_normal((n_queries, d), np.float32))
  k = int(np.sqrt(n))
  centers = rng.standard_normal((k, d), np.float32) * 2.0
  def draw(m):
    x = centers[rng.integers(0, k, m)]
    x += rng.standard_normal((m, d), np.float32)
    return x
  return draw(n), draw(n_queries)


def timed(fn):
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start


def cpu_timed(fn):
  """(fn(), CPU seconds of this process, wall seconds)."""
  cpu, wall = time.process_time(), time.perf_counter()
  out = fn()
  return out, time.process_time() - cpu, time.perf_counter() - wall


def bench_catalogue(name: str, items: np.ndarray, queries: np.ndarray, args) -> dict:
  """Prints the rows (index, setting, build s, queries/s, recall@n, ratio to exact) of one catalogue; returns its
  summary (the fastest setting reaching --target_recall, or None)."""
  from jaxrec.index import faiss_index, index_config, retrieval_recall

  n, d = items.shape
  ids = np.arange(1, n + 1)
  rows, notes = [], []
  print(f"\n== {name}: {n:,} items × {d}, {len(queries)} queries, top-{args.n} ==", flush=True)

  def build(kind, **kw):
    ix = faiss_index.build(items, ids, index_config(kind, threads=args.threads, **kw))
    faiss_index.faiss.omp_set_num_threads(args.search_threads)
    return ix

  def search(ix):
    ix.search_rows(queries[:8], args.n)  # warm-up
    found, cpu, wall = cpu_timed(lambda: ix.search_rows(queries, args.n))
    return found, len(queries) / cpu, len(queries) / wall

  def row(label, setting, build_s, ix):
    found, qps, wall_qps = search(ix)
    r = dict(index=label, setting=setting, build_s=build_s, qps=qps, wall_qps=wall_qps,
             recall=retrieval_recall(np.where(found >= 0, found + 1, 0), exact_ids))
    r["ratio"] = r["qps"] / rows[0]["qps"] if rows else 1.0
    rows.append(r)
    print(f"{r['index']:6} {r['setting']:38} {r['build_s']:8.1f} {r['qps']:10.0f} {r['wall_qps']:10.0f} "
          f"{r['recall']:10.4f} {r['ratio']:8.1f}", flush=True)
    return r["recall"] >= args.stop_recall  # more nprobe / efSearch only costs time from here

  print(f"{'index':6} {'setting':38} {'build s':>8} {'q/CPU-s':>10} {'q/wall-s':>10} {'recall@' + str(args.n):>10} "
        f"{'× exact':>8}")
  exact = build("flat")
  exact_ids = search(exact)[0] + 1  # [q, n] item ids
  row("flat", "exact (BLAS)", exact.build_seconds, exact)
  exact = None  # frees the flat copy (1 GB at 1M × 256) before the next index is built
  if "ivf" in args.kinds:
    nlist = faiss_index.default_nlist(n)
    train = min(n, args.ivf_train * nlist)
    ix = build("ivf", ivf=dict(nlist=nlist, train_size=train))
    for nprobe in [p for p in args.nprobes if p <= nlist]:
      faiss_index.faiss.extract_index_ivf(ix.index).nprobe = nprobe
      if row("ivf", f"nlist={nlist} train={train // 1000}k nprobe={nprobe}", ix.build_seconds, ix):
        break
    del ix
  if "hnsw" in args.kinds and n > args.hnsw_max_n:
    notes.append(f"hnsw skipped: {n:,} items > --hnsw_max_n={args.hnsw_max_n:,} (its build is the slow part)")
  for mips in args.hnsw_mips if "hnsw" in args.kinds and n <= args.hnsw_max_n else ():
    ix = build("hnsw", mips=mips, hnsw=dict(m=args.hnsw_m, ef_construction=args.hnsw_efc))
    for ef in args.efs:
      ix.index.hnsw.efSearch = ef
      if row("hnsw", f"M={args.hnsw_m} efC={args.hnsw_efc} efSearch={ef}{' L2-aug' if mips == 'augment' else ''}",
             ix.build_seconds, ix):
        break
    del ix
  for note in notes:
    print(note)
  ok = [r for r in rows[1:] if r["recall"] >= args.target_recall]
  best = max(ok, key=lambda r: r["qps"]) if ok else None
  summary = dict(name=name, n=n, d=d, best=best, exact_qps=rows[0]["qps"],
                 top=max(rows[1:], key=lambda r: r["recall"]) if len(rows) > 1 else None)
  print(summary_line(summary, args), flush=True)
  return summary


def summary_line(s: dict, args) -> str:
  head = f"{s['name']}, {s['n']:,} × {s['d']}"
  b = s["best"]
  if b is None:
    t = s.get("top")
    most = f" (highest: {t['index']} {t['setting']}: {t['recall']:.4f} at {t['ratio']:.1f}x)" if t else ""
    miss = ": target missed" if s["n"] >= 1_000_000 else " (reference: the target is for 1M items)"
    return f"SUMMARY {head}: no setting reached recall@{args.n} >= {args.target_recall}{most}{miss}"
  if s["n"] >= 1_000_000:
    met = "target met (>= 10x on 1M items)" if b["ratio"] >= 10 else "target missed (>= 10x on 1M items)"
  else:  # issue #6's target is for 1M items: smaller catalogues are for reference
    met = f"{'>=' if b['ratio'] >= 10 else '<'} 10x (reference: the target is for 1M items)"
  return (f"SUMMARY {head}: fastest at recall@{args.n} >= {args.target_recall}: {b['index']} {b['setting']}: "
          f"recall {b['recall']:.4f}, {b['qps']:.0f} vs {s['exact_qps']:.0f} q/CPU-s = {b['ratio']:.1f}x the exact "
          f"scan: {met}")


def real_run(args) -> str:
  """A CF workdir with embeddings: --workdir, else a quick MF (d=64, 3 epochs) on CoLLM's ML-1M split."""
  if args.workdir:
    return args.workdir
  from jaxrec.train import task
  import importlib.util

  spec = importlib.util.spec_from_file_location(
      "mf_cfg", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "baselines",
                             "mf.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("ml1m")
  config.data.root = args.data_root
  config.model.embed_dim = 64
  config.stages[0].num_epochs = 3
  workdir = os.path.join(tempfile.mkdtemp(prefix="jaxrec-bench-"), "mf")
  print(f"training a quick MF (d=64, 3 epochs) on ML-1M into {workdir} ...", flush=True)
  task.train(config, workdir, progress=False)
  return workdir


def end_to_end(run, args) -> None:
  """users/s of retrieve(N) + LLM rerank vs LLM scoring of all items, on the run's validation users."""
  from jaxrec.index import faiss_index, index_config, make_llm_scorer, retrieval as R
  from jaxrec.index.evaluation import contexts, query_rows

  split = run.dataset.splits["valid"]
  users, rows, _ = query_rows(split, args.llm_users)
  ctx = contexts(split, rows)
  seen = run.seen_items("all")
  exclude = [seen.get(int(u), np.zeros(0, np.int64)) for u in users]
  index = faiss_index.build(run.item_table[1:], np.arange(1, run.n_items + 1), index_config("flat"))
  scorer = make_llm_scorer(args.llm, run.dataset.item_text, run.config.data if run.config else None,
                           run.config.data.name if run.config else "", args.keep_layers)
  bs = args.llm_batch_size
  warm = {k: np.repeat(v[:1], bs, 0) for k, v in ctx.items()}
  warm["item"] = np.arange(1, bs + 1)
  scorer(warm)  # compile the common prompt shapes before timing

  def pipeline():
    q = run.query_vectors(users, ctx["history"], ctx["history_label"])
    cand = R.retrieve(index, q, args.rerank_n, exclude)
    return R.rerank(scorer, ctx, cand, 10, bs)

  _, secs = timed(pipeline)
  prompts = len(users) * args.rerank_n
  rerank_ups = len(users) / secs
  pps = prompts / secs
  print(f"\n== end to end on ML-1M ({run.n_items:,} items), LLM {args.llm!r}"
        f"{f' (first {args.keep_layers} layers)' if args.keep_layers > 0 else ''}, batch {bs} ==")
  print(f"retrieve-then-rerank (N={args.rerank_n}): {len(users)} users in {secs:.1f} s = {rerank_ups:.4f} users/s "
        f"({pps:.1f} prompts/s)")
  if args.full_users > 0:
    sub = {k: v[:args.full_users] for k, v in ctx.items()}
    _, fsecs = timed(lambda: R.full_catalogue(scorer, sub, run.n_items, exclude[:args.full_users], 10, bs))
    full_ups, how = args.full_users / fsecs, "measured"
  else:
    full_ups, how = pps / run.n_items, f"extrapolated from {pps:.1f} prompts/s"
  print(f"LLM scoring of every item: {full_ups:.6f} users/s ({how})")
  print(f"ratio: retrieve-then-rerank is {rerank_ups / full_ups:.1f}x faster per user than full-catalogue scoring")


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", default=None, help="a trained CF run (else a quick MF is trained)")
  p.add_argument("--data_root", default=os.environ.get("JAXREC_DATA", "../shared/data"))
  p.add_argument("--sizes", type=_ints, default=[100_000, 1_000_000])
  p.add_argument("--dims", type=_ints, default=[64, 256])
  p.add_argument("--data", default="random,clustered")
  p.add_argument("--kinds", default="ivf,hnsw")
  p.add_argument("--queries", type=int, default=1000)
  p.add_argument("--n", type=int, default=50)
  p.add_argument("--nprobes", type=_ints, default=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
  p.add_argument("--ivf_train", type=int, default=50, help="k-means training points per IVF list (capped sample)")
  p.add_argument("--efs", type=_ints, default=[16, 32, 64, 128, 256, 512, 1024])
  p.add_argument("--hnsw_m", type=int, default=32)
  p.add_argument("--hnsw_efc", type=int, default=100, help="HNSW efConstruction (build time grows with it)")
  p.add_argument("--hnsw_max_n", type=int, default=1_000_000, help="no HNSW on larger catalogues")
  p.add_argument("--hnsw_mips", default="none", help="HNSW metric(s): 'none' inner product, 'augment' L2")
  p.add_argument("--threads", type=int, default=os.cpu_count(), help="Faiss threads for builds")
  p.add_argument("--search_threads", type=int, default=1, help="Faiss threads for the timed searches")
  p.add_argument("--target_recall", type=float, default=0.95)
  p.add_argument("--stop_recall", type=float, default=0.999, help="a sweep stops at this recall")
  p.add_argument("--llm", default="smollm2", help="'' skips the end-to-end part")
  p.add_argument("--keep_layers", type=int, default=-1)
  p.add_argument("--llm_users", type=int, default=2)
  p.add_argument("--llm_batch_size", type=int, default=25)
  p.add_argument("--rerank_n", type=int, default=50)
  p.add_argument("--full_users", type=int, default=0, help="users scored on the full catalogue (0: extrapolate)")
  p.add_argument("--skip_real", action="store_true")
  args = p.parse_args()
  args.kinds = args.kinds.split(",")
  args.hnsw_mips = args.hnsw_mips.split(",")
  import faiss

  print(f"faiss {faiss.__version__}, {os.cpu_count()} CPUs, build threads {args.threads}, search threads "
        f"{args.search_threads}, {faiss.get_num_gpus()} GPUs", flush=True)
  print(" ".join(sys.argv), flush=True)
  start = time.perf_counter()
  run, summaries = None, []
  if not args.skip_real:
    from jaxrec.index import load_run
    run = load_run(real_run(args))
    users = np.arange(1, len(run.user_table)) if run.user_table is not None else None
    if users is not None:
      q = run.query_vectors(users, np.zeros((len(users), 1), np.int64))
      summaries.append(bench_catalogue(f"ML-1M item embeddings ({run.model_name})", run.item_table[1:], q, args))
  for n in args.sizes:
    for d in args.dims:
      for kind in args.data.split(","):
        items, queries = synthetic(n, d, args.queries, kind)
        summaries.append(bench_catalogue(f"synthetic {kind}", items, queries, args))
        del items
  print("")
  for s in summaries:
    print(summary_line(s, args))
  if run is not None and args.llm:
    end_to_end(run, args)
  print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
  main()
