"""P(Yes) scoring throughput on a real split: jaxrec (per prompt and with shared prefixes) vs transformers' PyTorch.

  python benchmarks/scoring.py --data_root=../shared/data                  # 4 and 30 layers, f32 and bf16
  python benchmarks/scoring.py --data_root=../shared/data --layers=4 --rows=1024 --precisions=f32

Rows: CoLLM's ML-1M validation split, whole users in a seeded order until --rows rows (per layer count; rows of one
user arrive together, as in the split), the CoLLM movie prompt with 10 history titles. Both frameworks score the
same token ids (the ID slots hold the placeholder token: throughput does not depend on what fills them) at the same
precision, read the logits of " Yes" / " No" at the last position and return softmax(Yes, No)[Yes].

  torch     batches of --batch in split order, left-padded to each batch's longest, `logits_to_keep=1` and
            positions from the mask: the way CoLLM / TALLRec score (under torch.inference_mode)
  jax       `PYesScorer`: length-bucketed batches of --batch, padded to a multiple of 16
  shared    `PYesScorer.shared`: rows of one user and history run their common prefix once

Each configuration runs in its own process, the jitted programs once untimed (compiles) and then timed. "% floor"
is the reference work (every prompt alone, unpadded: `_common.decoder_flops`) at the rate JAX runs the layer's
products alone (`_common.matmul_rate`), divided by the measured time; shared-prefix scoring skips work, so it may
exceed 100%.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

TEMPLATE = "collm_movie"


def _rows(args, layers: int):
  """(encodings, fields, answer ids, tokenizer) of the benchmark rows (see the module docstring)."""
  import numpy as np

  from jaxrec.data import get_data_config, load_dataset, prompts
  from jaxrec.llm.tokenizer import load_tokenizer
  from jaxrec.models import prefix
  from jaxrec.models.llmrec import answer_token_ids

  cfg = get_data_config("ml1m_collm")
  cfg.root = args.data_root
  ds = load_dataset(cfg)
  split = ds["valid"]
  n = int(args.rows.split(",")[args.layers.split(",").index(str(layers))] if "," in args.rows else args.rows)
  users = np.random.RandomState(0).permutation(np.unique(split.user))
  picked = []
  for u in users:
    picked.extend(np.flatnonzero(split.user == u).tolist())
    if len(picked) >= n:
      break
  rows = np.asarray(picked[:n])
  sub = split.take(rows)
  tok = load_tokenizer(None)
  template = prompts.TEMPLATES[TEMPLATE]
  texts = prompts.render(template, sub, ds.item_text, range(len(rows)), 10, True, cfg.empty_history_text)
  encodings = prompts.tokenize(texts, tok, 1)
  fields = prefix.row_fields(sub)
  return encodings, fields, answer_token_ids(tok, template), tok


def _jax(args, precision: str, layers: int, mode: str) -> dict:
  import numpy as np

  from jaxrec.data import prompts
  from jaxrec.models import builder, tallrec_config
  from jaxrec.models.scoring import PYesScorer

  encodings, fields, _, tok = _rows(args, layers)
  cfg = tallrec_config(keep_layers=layers, template=TEMPLATE, dtype="bfloat16" if precision == "bf16" else "float32",
                       attention=args.attention)
  model, params = builder.build(cfg, tokenizer=tok, template=prompts.TEMPLATES[TEMPLATE])
  scorer = PYesScorer(model, batch_size=args.batch)
  pad_id = prompts.pad_token_id(tok)
  lengths = np.asarray([len(e["ids"]) for e in encodings])

  def collate(rows):
    out = prompts.pad_left([encodings[r] for r in rows], pad_id, args.pad_multiple)
    out.update({k: np.asarray(v)[rows] for k, v in fields.items()})
    return out

  def score():
    if mode == "shared":
      return scorer.shared(params, encodings, fields, pad_id, args.pad_multiple)
    return scorer(params, len(encodings), collate, lengths)

  t0 = time.perf_counter()
  score()  # compiles every shape
  first = time.perf_counter() - t0
  t0 = time.perf_counter()
  p = score()
  seconds = time.perf_counter() - t0
  return {"seconds": seconds, "first_s": first, "rows": len(encodings), "p": p.tolist(),
          "lengths": lengths.tolist()}  # lengths: the reference work's prompts


def _torch(args, precision: str, layers: int) -> dict:
  import numpy as np
  import torch
  from transformers import AutoModelForCausalLM

  from jaxrec.data import prompts
  from jaxrec.llm import assets

  encodings, _, (yes, no), tok = _rows(args, layers)
  g = assets.default_gguf()
  model = AutoModelForCausalLM.from_pretrained(str(g.parent), gguf_file=g.name,
                                               dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
  model.model.layers = model.model.layers[:layers]
  model.config.num_hidden_layers = layers
  model.eval()
  pad_id = prompts.pad_token_id(tok)

  def score():
    out = []
    with torch.inference_mode():
      for lo in range(0, len(encodings), args.batch):
        b = prompts.pad_left(encodings[lo:lo + args.batch], pad_id, 1)
        ids, mask = torch.from_numpy(b["input_ids"]).long(), torch.from_numpy(b["attention_mask"]).long()
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1).logits[:, -1]
        out.append(torch.softmax(logits[:, [yes, no]].float(), -1)[:, 0].numpy())
    return np.concatenate(out)

  t0 = time.perf_counter()
  score()  # the same warm-up as JAX's
  first = time.perf_counter() - t0
  t0 = time.perf_counter()
  p = score()
  return {"seconds": time.perf_counter() - t0, "first_s": first, "rows": len(encodings), "p": p.tolist()}


def _child(args) -> None:
  kind, *rest = args.child.split(":")
  if kind == "matmul":  # the layer's products over a batch of --batch prompts of the split's mean length
    from jaxrec.llm import shapes

    out = {"gflops": _common.matmul_rate("jax", rest[0], _common.layer_dots(shapes.of_llm(None),
                                                                            args.batch * int(rest[1])))}
  elif kind == "jax":
    out = _jax(args, rest[0], int(rest[1]), rest[2])
  else:
    out = _torch(args, rest[0], int(rest[1]))
  out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print("RESULT " + json.dumps(out))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data_root", default=os.environ.get("JAXREC_DATA", "../shared/data"))
  p.add_argument("--layers", default="4,30", help="comma-separated kept-layer counts")
  p.add_argument("--rows", default="512,64", help="rows per layer count (one value for all)")
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--precisions", default="f32,bf16")
  p.add_argument("--attention", default="causal_blocks", choices=("einsum", "causal_blocks", "dpa"))
  p.add_argument("--pad_multiple", type=int, default=16, help="jaxrec's prompt-length bucket (config.data)")
  p.add_argument("--frameworks", default="torch,jax,shared", help="which of torch, jax, shared to run")
  p.add_argument("--output", default="", help="also write the table as JSON here")
  p.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    return _child(args)
  print(f"P(Yes) scoring, ML-1M CoLLM valid, prompt {TEMPLATE}, batch {args.batch}; {_common.machine()}")
  passthrough = [f"--data_root={args.data_root}", f"--layers={args.layers}", f"--rows={args.rows}",
                 f"--batch={args.batch}", f"--attention={args.attention}", f"--pad_multiple={args.pad_multiple}"]
  table = []
  print(f"{'layers':>6} {'prec':>5} {'framework':>9} {'rows':>5} {'rows/s':>8} {'GFLOP/s':>8} {'% floor':>8} "
        f"{'vs torch':>8} {'max|Δp|':>8} {'peak MB':>8} {'1st pass s':>10}")
  for precision in args.precisions.split(","):
    rate = (_common.run_child(__file__, [f"--child=matmul:{precision}:190"]) or {}).get("gflops", float("nan"))
    for layers in (int(x) for x in args.layers.split(",")):
      res = {}
      for name, child in (("torch", f"torch:{precision}:{layers}"), ("jax", f"jax:{precision}:{layers}:plain"),
                          ("shared", f"jax:{precision}:{layers}:shared")):
        if name not in args.frameworks.split(","):
          continue
        out = _common.run_child(__file__, [f"--child={child}", *passthrough])
        if out is not None:
          res[name] = out
      ours = res.get("jax") or res.get("shared")
      if ours is None:
        continue
      cfg = _layer_cfg(layers)
      flops = _common.decoder_flops(cfg, ours["lengths"])
      floor_s = flops / (rate * 1e9)
      import numpy as np

      for name, r in res.items():
        diff = float(np.max(np.abs(np.asarray(r["p"]) - np.asarray(ours["p"]))))
        rps = r["rows"] / r["seconds"]
        vs = rps / (res["torch"]["rows"] / res["torch"]["seconds"]) if "torch" in res else float("nan")
        row = dict(layers=layers, precision=precision, framework=name, rows=r["rows"], rows_per_s=rps,
                   gflops=flops / r["seconds"] / 1e9, pct_floor=100 * floor_s / r["seconds"], vs_torch=vs,
                   max_abs_dp_vs_jax=diff, peak_rss_mb=r["peak_rss_mb"], matmul_gflops=rate,
                   seconds=r["seconds"], first_pass_s=r["first_s"])
        table.append(row)
        print(f"{layers:>6} {precision:>5} {name:>9} {r['rows']:>5} {rps:8.2f} {row['gflops']:8.1f} "
              f"{row['pct_floor']:7.0f}% {vs:7.2f}× {diff:8.1e} {r['peak_rss_mb']:8.0f} {r['first_s']:10.1f}")
  print(f"floor: the work at JAX's GFLOP/s for SmolLM2's layer products alone, over {args.batch} × 190 tokens (the "
        f"split's mean prompt); rows of whole users, so shared prefixes save what they would on the full split")
  if args.output:
    with open(args.output, "w") as f:
      json.dump({"machine": _common.machine(), "args": vars(args), "table": table}, f, indent=1)


def _layer_cfg(layers: int):
  from jaxrec.llm import shapes

  cfg = shapes.of_llm(None)
  return cfg.replace(num_layers=min(layers, cfg.num_layers) if layers > 0 else cfg.num_layers)


if __name__ == "__main__":
  main()
