"""The `index` config section: which Faiss index, its knobs, and the retrieve-then-rerank sizes.

  kind: 'flat' | 'ivf' | 'hnsw'   'flat' (default) = exact inner product (IndexFlatIP): it reproduces the CF
                                  model's own ranking; 'ivf' / 'hnsw' are approximate and faster on big catalogues
  device: 'auto' | 'cpu' | 'gpu'  'auto' = a GPU index when faiss reports GPUs (the faiss-gpu build), else CPU;
                                  HNSW has no Faiss GPU version and always runs on CPU
  threads: int                    OpenMP threads for Faiss (0 = Faiss's default, all cores)
  mips: 'none' | 'augment'        approximate indexes only: 'none' (default) searches inner product directly;
                                  'augment' turns it into L2 search by appending sqrt(max_norm² - |x|²) to every
                                  item (Bachrach et al. 2014). Measured on 10k random 64-d items, recall@50: HNSW
                                  0.98 (IP) vs 0.74 (augment: queries sit far off the items' sphere, which misleads
                                  the graph walk), IVF nprobe 16 0.34 vs 0.30; so IP is the default
  ivf: nlist (0 = 4·sqrt(n_items), at least 1), nprobe (lists scanned per query), train_size (k-means points;
       0 = all items)
  hnsw: m (graph degree), ef_construction, ef_search
  retrieve:
    n: int                        candidates per user (top-N from the index, training items excluded)
    k: int                        final list length (top-K after re-ranking); k <= n
    exclude: 'all' | 'positives'  which training interactions never come back: every item the user interacted
                                  with in the training split, or only the liked ones (what jaxrec.evaluate masks)
    mode: 'filter' | 'selector'   'filter': over-fetch n + |excluded| per user and drop them (batched, any index,
                                  GPU too); 'selector': a Faiss IDSelector per query (CPU indexes, one query at a
                                  time)
    llm_batch_size: int           prompts per LLM forward pass when re-ranking
    query_batch_size: int         users per Faiss search call
"""

from __future__ import annotations

import ml_collections

from jaxrec.config_util import checker, update_strict

KINDS = ("flat", "ivf", "hnsw")
DEVICES = ("auto", "cpu", "gpu")


def index_config(kind: str = "flat", **overrides) -> ml_collections.ConfigDict:
  """The defaults for `kind`, updated by `overrides` (nested dicts allowed; unknown keys raise)."""
  cfg = ml_collections.ConfigDict(dict(
      kind=kind, device="auto", threads=0, mips="none",
      # Measured (benchmarks/results/retrieval_1m.txt): on 1M-item Gaussian mixtures nprobe 4 of 4000 lists reaches
      # recall@50 0.95-0.98 (~40x the exact scan), 8 reaches 0.9996+ (~25x); a trained ML-1M MF's items cluster
      # less (nprobe 32 of 83 lists for 0.97), hence 64. i.i.d. Gaussian vectors have no structure: no IVF / HNSW
      # setting beats the exact scan there at recall 0.95. train_size 200k = 50 points per list at 1M items.
      ivf=dict(nlist=0, nprobe=64, train_size=200_000),
      hnsw=dict(m=32, ef_construction=200, ef_search=128),
      retrieve=dict(n=100, k=10, exclude="all", mode="filter", llm_batch_size=32, query_batch_size=1024)))
  update_strict(cfg, overrides, "config.index")
  validate(cfg)
  return cfg


_check = checker("config.index")


def _int(v, lo: int) -> bool:
  return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def validate(cfg) -> None:
  """One-line JaxrecError naming the first impossible value of an index section."""
  reference = ml_collections.ConfigDict(dict(
      kind=0, device=0, threads=0, mips=0, ivf=dict(nlist=0, nprobe=0, train_size=0),
      hnsw=dict(m=0, ef_construction=0, ef_search=0),
      retrieve=dict(n=0, k=0, exclude=0, mode=0, llm_batch_size=0, query_batch_size=0)))
  for key in cfg.keys():
    _check(key in reference, key, f"a field of the index section ({', '.join(sorted(reference.keys()))})", key)
  for sub in ("ivf", "hnsw", "retrieve"):
    for key in cfg[sub].keys():
      _check(key in reference[sub], f"{sub}.{key}", f"one of {sorted(reference[sub].keys())}", key)
  _check(cfg.kind in KINDS, "kind", f"one of {KINDS}", cfg.kind)
  _check(cfg.device in DEVICES, "device", f"one of {DEVICES}", cfg.device)
  _check(_int(cfg.threads, 0), "threads", "an integer >= 0 (0 = Faiss's default)", cfg.threads)
  _check(cfg.mips in ("none", "augment"), "mips", "'none' or 'augment'", cfg.mips)
  _check(_int(cfg.ivf.nlist, 0), "ivf.nlist", "an integer >= 0 (0 = 4·sqrt(n_items))", cfg.ivf.nlist)
  _check(_int(cfg.ivf.nprobe, 1), "ivf.nprobe", "an integer >= 1", cfg.ivf.nprobe)
  _check(_int(cfg.ivf.train_size, 0), "ivf.train_size", "an integer >= 0 (0 = all items)", cfg.ivf.train_size)
  for key in ("m", "ef_construction", "ef_search"):
    _check(_int(cfg.hnsw[key], 1), f"hnsw.{key}", "an integer >= 1", cfg.hnsw[key])
  r = cfg.retrieve
  for key in ("n", "k", "llm_batch_size", "query_batch_size"):
    _check(_int(r[key], 1), f"retrieve.{key}", "an integer >= 1", r[key])
  _check(r.k <= r.n, "retrieve.k", f"at most retrieve.n = {r.n} (the re-ranker only sees n candidates)", r.k)
  _check(r.exclude in ("all", "positives"), "retrieve.exclude", "'all' or 'positives'", r.exclude)
  _check(r.mode in ("filter", "selector"), "retrieve.mode", "'filter' or 'selector'", r.mode)
