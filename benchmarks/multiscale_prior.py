"""The popularity prior's weight γ of a trained multi-scale run, chosen after training on validation.

  python benchmarks/multiscale_prior.py --workdir=W --gammas=0,0.5,1,2,4,8 --users=-1 \
      --out=benchmarks/results/multiscale/prior_ml1m_long

The run ranks by zᵀv / τ + γ log p̂(i) (`jaxrec.models.multiscale`, γ = config.model.pop_prior, 1 by default): γ = 0
is the text model alone, γ → ∞ is most popular. Ranking depends on γ only (τ scales both terms alike), so the
user vectors and the item table are computed once from the run's best checkpoint and every γ is one more top-K pass
over the same users (the run's own evaluation protocol: full catalogue, training items masked). Writes
`<out>.json` and `<out>.md` (NDCG / P / R / Coverage @10 per γ, with the machine).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sweep(workdir: str, gammas: list[float], users: int | None, split: str) -> dict:
  """Top-K figures per γ; `users` = the number of (seeded) validation users, -1 all, None the run's own budget."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from jaxrec import evaluate as ev
  from jaxrec.multiscale import text as T
  from jaxrec.train import loop, task, workdir as run_dir
  from jaxrec.train.multiscale_data import log_prior
  from jaxrec.train.multiscale_eval import make_item_table
  from jaxrec.train.multiscale_task import build_model

  config = run_dir.read_config(workdir)
  if users is not None:
    config.budget.eval_users = users
  fam = task.family_of(config)
  dataset = fam.load(config, None)
  model, init, table = build_model(config, dataset)
  params = loop.restore_params(config, workdir, init)
  start = time.perf_counter()
  items = jnp.asarray(make_item_table(model, table, int(config.get("eval_item_chunk", 256)))(params))  # [I + 1, d]
  prior = jnp.asarray(log_prior(dataset.info["train_item_counts"]))  # [I + 1]
  h = int(config.model.user.max_history)
  length = table.user_length(h)
  encode = jax.jit(lambda p, b: model.encode_users(p, b)["z"])
  z_cache: dict[bytes, jax.Array] = {}

  def user_vectors(batch):  # [B, d], computed once per batch of users
    key = batch["user"].tobytes()
    if key not in z_cache:
      z_cache[key] = encode(params, T.encode_histories(table, batch["history"][:, -h:], length))
    return z_cache[key]

  sp = dataset.splits[split]
  rows = []
  for g in gammas:
    score = lambda b, g=g: np.asarray(model.rank_logits(user_vectors(b), items, prior, pop_prior=g))
    m = ev.evaluate_topk(score, sp, dataset.train_items_by_user, dataset.n_items, (10,), 64)
    rows.append({"gamma": g, **{k: m[k] for k in ("ndcg@10", "ndcg_se@10", "precision@10", "recall@10",
                                                   "coverage@10", "n_users")}})
    print(f"gamma={g:g} ndcg@10={m['ndcg@10']:.4f} ± {m['ndcg_se@10']:.4f} cov@10={m['coverage@10']:.4f}",
          flush=True)
  return {"workdir": str(workdir), "split": split, "trained_gamma": float(config.model.pop_prior), "rows": rows,
          "seconds": round(time.perf_counter() - start, 1)}


def write(out: pathlib.Path, result: dict, machine: str) -> None:
  out.parent.mkdir(parents=True, exist_ok=True)
  out.with_suffix(".json").write_text(json.dumps({**result, "machine": machine}, indent=2) + "\n")
  lines = [f"# Popularity-prior weight γ after training: {result['workdir']}", "",
           f"{machine}; split {result['split']}, {result['rows'][0]['n_users']} users; trained with "
           f"γ = {result['trained_gamma']:g}; {result['seconds']} s.", "",
           "| γ | ndcg@10 ± se | precision@10 | recall@10 | coverage@10 |", "|---|---|---|---|---|"]
  for r in result["rows"]:
    lines.append(f"| {r['gamma']:g} | {r['ndcg@10']:.4f} ± {r['ndcg_se@10']:.4f} | {r['precision@10']:.4f} | "
                 f"{r['recall@10']:.4f} | {r['coverage@10']:.4f} |")
  out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> None:
  # Flags on a private FlagValues: importing this module (the tests do) defines nothing global.
  fv = flags.FlagValues()
  workdir = flags.DEFINE_string("workdir", None, "a finished multi-scale run", flag_values=fv)
  gammas = flags.DEFINE_list("gammas", ["0", "0.5", "1", "2", "4", "8"], "prior weights to evaluate", flag_values=fv)
  users = flags.DEFINE_integer("users", -1, "validation users (seeded sample; -1 = all)", flag_values=fv)
  split = flags.DEFINE_string("split", "valid", "split to evaluate", flag_values=fv)
  out = flags.DEFINE_string("out", None, "output path without suffix (.json and .md are written)", flag_values=fv)
  fv(argv)
  from benchmarks._common import machine
  if not workdir.value:
    sys.exit("error: --workdir is required")
  result = sweep(workdir.value, [float(g) for g in gammas.value], users.value, split.value)
  if out.value:
    write(pathlib.Path(out.value), result, machine())


if __name__ == "__main__":
  main(sys.argv)
