"""Top-K recommendations of a CF run through its Faiss index, optionally re-ranked by an LLM; or their evaluation.

  python launch/recommend.py --workdir=workdirs/mf_ml1m --user=42
  python launch/recommend.py --workdir=workdirs/mf_ml1m --history="Toy Story (1995); Heat (1995)" --llm=smollm2
  python launch/recommend.py --workdir=workdirs/mf_ml1m --evaluate=valid --llm=smollm2 --max_users=20

The index is <workdir>/index (launch/build_index.py); one built for another run, another catalogue or older
embeddings is refused. The user's training items (a new user's history items) are never recommended. With --llm,
the index's top-N candidates are scored by the LLM (P("Yes"), zero-shot TALLRec; see jaxrec.index.llm_scorer) and
its top-K printed; without it, the index's own top-K (CF scores). N, K and the LLM batch size come from the index
config and can be overridden here. --evaluate prints and writes (<workdir>/eval/retrieval_<split>.json) top-K
metrics of CF alone, of LLM re-ranking and, with --full_catalogue, of LLM scoring of every item.
Errors print one line `error: ...` and exit with status 2.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import app, flags, logging  # noqa: E402

from jaxrec.errors import JaxrecError  # noqa: E402
from launch import _cli  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "workdir of a CF run with a built index")
_USER = flags.DEFINE_integer("user", None, "an existing user id")
_HISTORY = flags.DEFINE_string("history", None, "a new user's liked titles: 'title; title; ...'")
_K = flags.DEFINE_integer("k", None, "list length (default: the index config's retrieve.k)")
_N = flags.DEFINE_integer("n", None, "candidates for the LLM (default: retrieve.n)")
_LLM = flags.DEFINE_string("llm", None, "re-rank with this LLM: 'smollm2', 'random', a .gguf path or HF dir")
_LLM_BATCH = flags.DEFINE_integer("llm_batch_size", None, "prompts per LLM call (default: retrieve.llm_batch_size)")
_KEEP_LAYERS = flags.DEFINE_integer("keep_layers", -1, "LLM budget knob: keep only the first N decoder layers")
_NPROBE = flags.DEFINE_integer("nprobe", None, "IVF lists scanned per query (default: as built)")
_EF = flags.DEFINE_integer("ef_search", None, "HNSW efSearch (default: as built)")
_EVALUATE = flags.DEFINE_string("evaluate", None, "evaluate on this split instead of recommending")
_MAX_USERS = flags.DEFINE_integer("max_users", -1, "--evaluate: at most this many users (-1 = all)")
_FULL = flags.DEFINE_bool("full_catalogue", False, "--evaluate: also score every item with the LLM (small data)")


def _overrides() -> dict:
  out = {"ivf.nprobe": _NPROBE.value, "hnsw.ef_search": _EF.value, "retrieve.k": _K.value, "retrieve.n": _N.value,
         "retrieve.llm_batch_size": _LLM_BATCH.value}
  return {k: v for k, v in out.items() if v is not None}


def main(argv):
  logging.set_verbosity(logging.WARNING)
  if len(argv) > 1:
    _cli.fail(f"unexpected arguments {argv[1:]}")
  if not _WORKDIR.value:
    _cli.fail("--workdir is required")
  if _EVALUATE.value is None and (_USER.value is None) == (_HISTORY.value is None):
    _cli.fail("pass exactly one of --user=ID and --history='title; title; ...' (or --evaluate=SPLIT)")
  try:
    from jaxrec import index as I
    run = I.load_run(_WORKDIR.value)
    overrides = _overrides()
    index, cfg = I.open_index(run, overrides)
    scorer = None
    if _LLM.value:
      scorer = I.make_llm_scorer(_LLM.value, run.dataset.item_text, run.config.data, run.config.data.name,
                                 _KEEP_LAYERS.value)
    if _EVALUATE.value is not None:
      _evaluate(I, run, index, cfg, scorer)
      return
    items = None if _HISTORY.value is None else run.items_from_titles(_HISTORY.value)
    top = I.recommend(run, index, cfg, user=_USER.value, history_items=items, scorer=scorer)
    who = f"user {_USER.value}" if _USER.value is not None else f"a new user ({len(items)} titles)"
    how = (f"re-ranked by LLM {_LLM.value!r} (P(Yes)) from {cfg.retrieve.n} candidates" if scorer is not None else
           "CF score")
    print(f"top-{cfg.retrieve.k} for {who}: {run.model_name} + {cfg.kind} index, {how}, seen items excluded")
    for rank, (item, score) in enumerate(zip(top.items[0], top.scores[0]), 1):
      if item > 0:
        title = run.dataset.item_text[item] or f"item {item} (no title)"
        print(f"{rank:3d}. {title}  {score:.4f}")
  except JaxrecError as e:
    _cli.fail(str(e))


def _evaluate(I, run, index, cfg, scorer) -> None:
  import pathlib

  from jaxrec import evaluate as ev

  split = run.dataset.splits.get(_EVALUATE.value)
  if split is None:
    raise JaxrecError(f"--evaluate={_EVALUATE.value}: not a split of the run's dataset "
                      f"({', '.join(run.dataset.splits)})")
  ks = tuple(k for k in (5, 10, 20) if k <= cfg.retrieve.n)
  if _FULL.value and scorer is None:
    raise JaxrecError("--full_catalogue needs --llm (it scores every item with the LLM)")
  results = I.evaluate_pipeline(run, index, split, cfg, scorer, ks, _FULL.value, _MAX_USERS.value)
  print(ev.format_table(results), flush=True)
  out = pathlib.Path(_WORKDIR.value) / "eval" / f"retrieval_{_EVALUATE.value}.json"
  ev.write_metrics(out, {"arms": results, "index": cfg.to_dict(), "llm": _LLM.value})
  print(f"wrote {out}", flush=True)


if __name__ == "__main__":
  app.run(main, flags_parser=_cli.parse_flags)
