"""Faiss retrieval of candidate items from a CF run's item embeddings, and LLM re-ranking of the candidates.

  cfg = index_config("hnsw")                       # the config section (jaxrec.index.config)
  build_for_run(workdir, cfg)                      # <workdir>/index/{index.faiss, item_ids.npy, manifest.json}
  run = load_run(workdir); index, cfg = open_index(run)   # a stale / other-run index fails in one line
  cand = retrieve(index, run.query_vectors(users, histories), n, exclude)   # training items never come back
  top = rerank(scorer, context, cand, k, batch_size)       # scorer: make_llm_scorer(...) or any pair scorer
  evaluate_pipeline(run, index, split, cfg, scorer)        # CF alone / re-ranked / full-catalogue LLM metrics

Modules: `config`, `faiss_index` (build / search / GPU), `store` (persistence + manifest checks), `run` (a CF run's
tables, query vectors, seen items), `retrieval` (exclusion, re-ranking), `llm_scorer`, `evaluation`, `pipeline`.
This package is at the end of the import chain: nothing in jaxrec imports it, only launch scripts and benchmarks.
"""

from jaxrec.index.config import index_config, validate
from jaxrec.index.evaluation import evaluate_pipeline, retrieval_recall
from jaxrec.index.faiss_index import ItemIndex, build, gpu_count
from jaxrec.index.llm_scorer import LLMScorer, make_llm_scorer
from jaxrec.index.pipeline import build_for_run, open_index, recommend
from jaxrec.index.retrieval import Candidates, full_catalogue, rerank, retrieve
from jaxrec.index.run import CFRun, from_model, load_run

__all__ = [
    "CFRun", "Candidates", "ItemIndex", "LLMScorer", "build", "build_for_run", "evaluate_pipeline", "from_model",
    "full_catalogue", "gpu_count", "index_config", "load_run", "make_llm_scorer", "open_index", "recommend",
    "rerank", "retrieval_recall", "retrieve", "validate",
]
