"""A Faiss index over a CF model's item vectors: exact inner product (IndexFlatIP), IVF or HNSW, CPU or GPU.

Rows of the Faiss index are 0..n-1 and `item_ids[row]` is the catalogue item id (1..n_items; padding id 0 is never
indexed). Every search re-scores the returned rows with the exact inner product from the item table and orders
them by (score desc, item id asc), the order `jaxrec.metrics.top_k_from_scores` uses, so an exact index gives the
model's own ranking and an approximate one differs only in which items it found, not in how it orders them.

Approximate indexes search inner product directly (METRIC_INNER_PRODUCT), or, with `mips='augment'`, L2 in an
augmented space: item x → [x, sqrt(M² - |x|²)], query q → [q, 0], with M the largest item norm; then |q' - x'|² =
|q|² + M² - 2<q, x>, so the nearest items in L2 are the largest inner products (see `jaxrec.index.config` for
which works better where).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import faiss
import numpy as np

from jaxrec.errors import JaxrecError


def gpu_count() -> int:
  """GPUs faiss can use (0 with the faiss-cpu build)."""
  fn = getattr(faiss, "get_num_gpus", None)
  return int(fn()) if fn is not None else 0


def use_gpu(cfg) -> bool:
  """Whether this index section runs on a GPU: 'auto' picks one when faiss has one (not for HNSW)."""
  if cfg.device == "cpu" or cfg.kind == "hnsw":
    if cfg.device == "gpu":
      raise JaxrecError("config.index.device='gpu': Faiss has no GPU HNSW; use kind 'flat' or 'ivf', or device 'cpu'")
    return False
  n = gpu_count()
  if cfg.device == "gpu" and n == 0:
    raise JaxrecError("config.index.device='gpu': faiss reports no GPU (install the faiss-gpu build, or use 'auto')")
  return n > 0


def augment_items(x: np.ndarray, max_norm: float) -> np.ndarray:
  """[n, D] → [n, D + 1] with the MIPS-to-L2 extra coordinate (see the module docstring)."""
  sq = np.maximum(max_norm ** 2 - np.einsum("nd,nd->n", x, x), 0.0)  # [n]; clipped: rounding may dip below 0
  return np.ascontiguousarray(np.concatenate([x, np.sqrt(sq)[:, None]], 1), np.float32)


def augment_queries(q: np.ndarray) -> np.ndarray:
  """[B, D] → [B, D + 1] with a zero extra coordinate."""
  return np.ascontiguousarray(np.concatenate([q, np.zeros((len(q), 1), q.dtype)], 1), np.float32)


def default_nlist(n: int) -> int:
  """4·sqrt(n) lists, but at least 39 training points per list (Faiss's own minimum warning) and >= 1."""
  return int(max(1, min(round(4 * np.sqrt(n)), n // 39)))


@dataclasses.dataclass
class ItemIndex:
  """A built (or loaded) index plus what searching it needs."""

  index: Any  # faiss.Index on CPU or GPU
  item_ids: np.ndarray  # [n] int64, row → item id
  vectors: np.ndarray  # [n, D] float32 item vectors of the rows (exact re-scoring)
  cfg: Any  # the index config section it was built with
  max_norm: float = 0.0  # MIPS augmentation constant (0 when not augmented)
  on_gpu: bool = False
  build_seconds: float = 0.0

  @property
  def augmented(self) -> bool:
    return self.cfg.kind != "flat" and self.cfg.mips == "augment"

  @property
  def ntotal(self) -> int:
    return int(self.index.ntotal)

  def cpu_index(self):
    """The CPU version of the index (what is written to disk)."""
    return faiss.index_gpu_to_cpu(self.index) if self.on_gpu else self.index

  def _queries(self, q: np.ndarray) -> np.ndarray:
    q = np.ascontiguousarray(q, np.float32)
    return augment_queries(q) if self.augmented else q

  def search_rows(self, queries: np.ndarray, k: int, params=None) -> np.ndarray:
    """[B, k] int64 Faiss rows of the (approximately) best k items per query; -1 where the index found fewer."""
    k = int(min(k, self.ntotal))
    _, rows = self.index.search(self._queries(queries), k, params=params)
    return rows

  def exact_scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """[B, k] float32 inner products of each query with the items at `rows` [B, k]; -inf at row -1."""
    queries = np.asarray(queries, np.float32)
    safe = np.where(rows >= 0, rows, 0)
    scores = np.empty(rows.shape, np.float32)
    step = max(1, (1 << 24) // max(1, rows.shape[1] * self.vectors.shape[1]))  # bounds the gathered [b, k, D]
    for lo in range(0, len(rows), step):
      scores[lo:lo + step] = np.einsum("bd,bkd->bk", queries[lo:lo + step], self.vectors[safe[lo:lo + step]])
    return np.where(rows >= 0, scores, -np.inf).astype(np.float32)

  def selector_params(self, excluded_rows: np.ndarray):
    """Faiss SearchParameters that skip `excluded_rows` (CPU indexes). Returns (params, keep-alive refs)."""
    if self.on_gpu:
      raise JaxrecError("config.index.retrieve.mode='selector' needs a CPU index; use mode 'filter' on a GPU")
    batch = faiss.IDSelectorBatch(np.ascontiguousarray(excluded_rows, np.int64))
    sel = faiss.IDSelectorNot(batch)
    if self.cfg.kind == "ivf":
      params = faiss.SearchParametersIVF(sel=sel, nprobe=int(self.cfg.ivf.nprobe))
    elif self.cfg.kind == "hnsw":
      params = faiss.SearchParametersHNSW(sel=sel, efSearch=int(self.cfg.hnsw.ef_search))
    else:
      params = faiss.SearchParameters(sel=sel)
    return params, (batch, sel)  # the params hold raw pointers: the selectors must outlive the search


# Faiss 1.15 runs a flat (exact) search through BLAS only from nq·d >= 128000 (2000 queries at d = 64), else one
# query at a time, streaming the whole item table from memory per query. Measured on 1M × 64 items, 1000 queries,
# one thread: 22 vs 395 queries per CPU-second. 1024 keeps the per-query path for a single query (2-3x faster than
# BLAS there: retrieve mode 'selector') and takes BLAS from 16 queries at d = 64, 4 at d = 256 (break-even ~2-4).
# The IVF coarse quantizer is a flat index too.
BLAS_THRESHOLD = 1024


def _set_faiss_globals(cfg) -> None:
  faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD
  if int(cfg.threads) > 0:
    faiss.omp_set_num_threads(int(cfg.threads))


def make_faiss_index(cfg, dim: int, n: int):
  """An empty (untrained) CPU Faiss index for this section; `dim` is the searched dimension."""
  if cfg.kind == "flat":
    return faiss.IndexFlatIP(dim)
  metric = faiss.METRIC_L2 if cfg.mips == "augment" else faiss.METRIC_INNER_PRODUCT
  if cfg.kind == "ivf":
    nlist = int(cfg.ivf.nlist) or default_nlist(n)
    quantizer = faiss.IndexFlatL2(dim) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(dim)
    return faiss.IndexIVFFlat(quantizer, dim, nlist, metric)  # faiss's wrapper keeps `quantizer` alive
  index = faiss.IndexHNSWFlat(dim, int(cfg.hnsw.m), metric)
  index.hnsw.efConstruction = int(cfg.hnsw.ef_construction)
  return index


def configure(index, cfg, gpu: bool = False) -> None:
  """Applies the search-time knobs (nprobe / efSearch) to a CPU or GPU index."""
  if cfg.kind == "ivf" and gpu:
    faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", int(cfg.ivf.nprobe))
  elif cfg.kind == "ivf":
    faiss.extract_index_ivf(index).nprobe = int(cfg.ivf.nprobe)
  elif cfg.kind == "hnsw":
    index.hnsw.efSearch = int(cfg.hnsw.ef_search)


ADD_CHUNK = 65_536  # vectors added per call: a progress bar with rows/s and ETA (faiss's add has none)


def build(vectors: np.ndarray, item_ids: np.ndarray, cfg, seed: int = 0, progress: bool = False) -> ItemIndex:
  """Builds the index of `vectors` [n, D] (row r is item `item_ids[r]`) for the section `cfg`; `progress` shows
  the adding (the slow part of IVF and HNSW) with items/s and ETA."""
  vectors = np.ascontiguousarray(vectors, np.float32)
  item_ids = np.asarray(item_ids, np.int64)
  if vectors.ndim != 2 or len(vectors) != len(item_ids) or len(vectors) == 0:
    raise JaxrecError(f"index: expected item vectors [n >= 1, D] and n ids, got {vectors.shape} and "
                      f"{item_ids.shape}")
  if not np.isfinite(vectors).all():
    raise JaxrecError("index: the item vectors hold NaN or inf (a diverged CF run?); retrain before indexing")
  _set_faiss_globals(cfg)
  start = time.perf_counter()
  n, d = vectors.shape
  augmented = cfg.kind != "flat" and cfg.mips == "augment"
  max_norm = float(np.sqrt(np.einsum("nd,nd->n", vectors, vectors).max())) if augmented else 0.0
  data = augment_items(vectors, max_norm) if augmented else vectors
  index = make_faiss_index(cfg, data.shape[1], n)
  if cfg.kind == "ivf":
    size = int(cfg.ivf.train_size)
    sample = data if size == 0 or size >= n else data[np.random.default_rng(seed).choice(n, size, replace=False)]
    index.cp.seed = seed
    index.train(sample)
  gpu = use_gpu(cfg)
  if gpu:  # build on the GPU too: adding is the expensive part of IVF
    index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
  from tqdm.auto import tqdm

  with tqdm(total=n, desc=f"adding to the {cfg.kind} index", unit="item", disable=not progress,
            dynamic_ncols=True, leave=False) as bar:
    for lo in range(0, n, ADD_CHUNK):  # the same index as one add: faiss appends rows in order
      index.add(data[lo:lo + ADD_CHUNK])
      bar.update(min(ADD_CHUNK, n - lo))
  configure(index, cfg, gpu)
  return ItemIndex(index=index, item_ids=item_ids, vectors=vectors, cfg=cfg, max_norm=max_norm, on_gpu=gpu,
                   build_seconds=time.perf_counter() - start)


def serialize(item_index: ItemIndex) -> bytes:
  return faiss.serialize_index(item_index.cpu_index()).tobytes()


def deserialize(blob: bytes, vectors: np.ndarray, item_ids: np.ndarray, cfg, max_norm: float) -> ItemIndex:
  """An ItemIndex from serialized bytes (moved to a GPU when the section says so) and the rows' vectors."""
  _set_faiss_globals(cfg)
  index = faiss.deserialize_index(np.frombuffer(blob, np.uint8))
  gpu = use_gpu(cfg)
  if gpu:
    index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
  configure(index, cfg, gpu)
  return ItemIndex(index=index, item_ids=np.asarray(item_ids, np.int64), vectors=np.ascontiguousarray(vectors,
                   np.float32), cfg=cfg, max_norm=max_norm, on_gpu=gpu)
