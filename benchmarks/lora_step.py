"""LoRA train-step throughput: jaxrec (JAX/Flax) vs PyTorch + peft on the same model, shape and precision.

  python benchmarks/lora_step.py                    # SmolLM2-135M, LoRA r=8 on q/v, batch 4 × 128, f32 and bf16
  python benchmarks/lora_step.py --precisions=f32 --steps=5
  python benchmarks/lora_step.py --scan_layers --attention=dpa   # the decoder's other layouts, same numbers

Each (framework, precision) runs in its own subprocess so that peak memory (max RSS) is its own. The step is the
Yes/No scoring objective: logits of two tokens at the last position, cross-entropy, AdamW on the adapters only.
JAX's step is jitted with the adapters and optimizer state donated (the frozen base is never copied). Achieved
GFLOP/s uses XLA's FLOP count of the compiled step for both. Targets: ≥ 85% of the matmul floor (issue #13) and the
ratio to peft at equal precision in the same run.

It also measures each framework's matmul rate on the layer's own products over B·T rows, each alone
(`_common.matmul_rate`), and prints the "floor": the step's FLOPs at that rate, i.e. the step time with zero
overhead. The backward pass's products have the forward's shapes transposed, so one rate serves both. Results:
benchmarks/results/throughput.md.
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

YES_NO = (7_929, 2_986)  # any two token ids: only the shape of the objective matters here


def _jax_step(args, precision: str) -> dict:
  import functools

  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from jaxrec.llm import loading, lora
  from jaxrec.llm.model import make_decoder

  dtype = jnp.bfloat16 if precision == "bf16" else jnp.float32
  cfg, base = loading.load_pretrained(None, dtype=dtype)
  lcfg = lora.LoraConfig(rank=8, alpha=16.0, dropout=0.0)
  adapters = lora.init(base, lcfg, jax.random.key(0))
  per_layer = (base, adapters, make_decoder(cfg, dtype=dtype, lora_cfg=lcfg, attention=args.attention))
  model = make_decoder(cfg, dtype=dtype, lora_cfg=lcfg, scan_layers=args.scan_layers, attention=args.attention)
  if args.scan_layers:
    from jaxrec.llm import stacking

    base, adapters = stacking.stack_layers(base), stacking.stack_layers(adapters)
  tx = optax.adamw(1e-4)
  opt_state = tx.init(adapters)
  rng = np.random.RandomState(0)
  ids = jnp.asarray(rng.randint(3, cfg.vocab_size, (args.batch, args.seq)), jnp.int32)
  mask = jnp.ones_like(ids)
  labels = jnp.asarray(rng.randint(0, 2, (args.batch,)), jnp.int32)
  last = jnp.full((args.batch, 1), args.seq - 1, jnp.int32)
  tokens = jnp.asarray(YES_NO, jnp.int32)

  def make_step(model):
    def loss_fn(ad, base):
      out = model.apply({"params": base, "lora": ad}, ids, attention_mask=mask, logit_positions=last,
                        logit_token_ids=tokens)
      return optax.softmax_cross_entropy_with_integer_labels(out["logits"][:, 0], labels).mean()

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(ad, opt_state, base):
      loss, g = jax.value_and_grad(loss_fn)(ad, base)
      updates, opt_state = tx.update(g, opt_state, ad)
      return optax.apply_updates(ad, updates), opt_state, loss

    return step

  step = make_step(model)
  t0 = time.perf_counter()
  compiled = step.lower(adapters, opt_state, base).compile()
  compile_s = time.perf_counter() - t0
  # XLA's FLOP count of the per-layer program (a scanned one counts its loop body once)
  counted = compiled if not args.scan_layers else \
      make_step(per_layer[2]).lower(per_layer[1], tx.init(per_layer[1]), per_layer[0]).compile()
  cost = counted.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", 0.0)) if cost else 0.0
  for _ in range(args.warmup):
    adapters, opt_state, loss = compiled(adapters, opt_state, base)
  jax.block_until_ready(loss)
  times = []
  for _ in range(args.steps):
    t0 = time.perf_counter()
    adapters, opt_state, loss = compiled(adapters, opt_state, base)
    jax.block_until_ready(loss)
    times.append(time.perf_counter() - t0)
  return {"step_s": sorted(times)[len(times) // 2], "compile_s": compile_s, "flops": flops, "loss": float(loss)}


def _torch_step(args, precision: str) -> dict:
  import numpy as np
  import torch
  from peft import LoraConfig, get_peft_model
  from transformers import AutoModelForCausalLM

  from jaxrec.llm import assets

  torch.manual_seed(0)
  dtype = torch.bfloat16 if precision == "bf16" else torch.float32
  g = assets.default_gguf()
  model = AutoModelForCausalLM.from_pretrained(str(g.parent), gguf_file=g.name, dtype=dtype)
  model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
  model.train()
  opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
  rng = np.random.RandomState(0)
  ids = torch.tensor(rng.randint(3, model.config.vocab_size, (args.batch, args.seq)))
  mask = torch.ones_like(ids)
  labels = torch.tensor(rng.randint(0, 2, (args.batch,)))
  tokens = torch.tensor(YES_NO)

  def step():
    opt.zero_grad(set_to_none=True)
    hidden = model.base_model.model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, -1]
    logits = hidden @ model.base_model.model.lm_head.weight[tokens].T  # only the two needed logits, as in JAX
    loss = torch.nn.functional.cross_entropy(logits.float(), labels)
    loss.backward()
    opt.step()
    return loss

  for _ in range(args.warmup):
    step()
  times = []
  for _ in range(args.steps):
    t0 = time.perf_counter()
    loss = step()
    times.append(time.perf_counter() - t0)
  return {"step_s": sorted(times)[len(times) // 2], "loss": float(loss)}


def _child(args) -> None:
  if args.child.startswith("matmul"):
    _, fw, precision = args.child.split(":")
    from jaxrec.llm import shapes

    dots = _common.layer_dots(shapes.of_llm(None), args.batch * args.seq)
    print("RESULT " + json.dumps({"gflops": _common.matmul_rate(fw, precision, dots)}))
    return
  fn = _jax_step if args.child.startswith("jax") else _torch_step
  out = fn(args, args.child.split(":")[1])
  out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print("RESULT " + json.dumps(out))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--batch", type=int, default=4)
  p.add_argument("--seq", type=int, default=128)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--precisions", default="f32,bf16")
  p.add_argument("--scan_layers", action="store_true", help="the decoder's layers under one nn.scan")
  p.add_argument("--attention", default="causal_blocks", choices=("einsum", "causal_blocks", "dpa"))
  p.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    return _child(args)
  tokens = args.batch * args.seq
  print(f"LoRA r=8 q/v train step, SmolLM2-135M (embedded GGUF, dequantized), batch {args.batch} × {args.seq}, "
        f"median of {args.steps} steps after {args.warmup} warm-up; scan_layers={args.scan_layers}, attention="
        f"{args.attention}; {_common.machine()}")
  print(f"{'precision':>9} {'framework':>10} {'step s':>8} {'tokens/s':>9} {'GFLOP/s':>8} {'peak MB':>8} {'compile s':>9}"
        f" {'matmul GFLOP/s':>14} {'floor s':>7}")
  for precision in args.precisions.split(","):
    res = {}
    shape = [f"--batch={args.batch}", f"--seq={args.seq}"]
    for fw in ("jax", "torch"):
      out = _common.run_child(__file__, [f"--child={fw}:{precision}", *shape, f"--steps={args.steps}",
                                         f"--warmup={args.warmup}", f"--attention={args.attention}"]
                              + (["--scan_layers"] if args.scan_layers else []))
      if out is not None:
        res[fw] = out
    for fw in ("jax", "torch"):  # the hardware/library ceiling each framework's step is up against
      out = _common.run_child(__file__, [f"--child=matmul:{fw}:{precision}", *shape])
      if out is not None and fw in res:
        res[fw]["matmul_gflops"] = out["gflops"]
    flops = res.get("jax", {}).get("flops", 0.0)
    for fw, r in res.items():
      gflops = flops / r["step_s"] / 1e9 if flops else float("nan")
      comp = f"{r['compile_s']:9.1f}" if "compile_s" in r else f"{'-':>9}"
      mm = r.get("matmul_gflops", float("nan"))
      # floor: the step's FLOPs at this framework's best matmul rate on the step's main shape (no overheads at all)
      print(f"{precision:>9} {fw:>10} {r['step_s']:8.3f} {tokens / r['step_s']:9.0f} {gflops:8.1f} "
            f"{r['peak_rss_mb']:8.0f} {comp} {mm:14.1f} {flops / mm / 1e9 if flops else float('nan'):7.2f}")
    if len(res) == 2:
      print(f"{precision:>9} {'ratio':>10} jaxrec / peft tokens/s = {res['torch']['step_s'] / res['jax']['step_s']:.2f}×"
            f" (equal precision, same run)")
      if "matmul_gflops" in res["jax"]:
        best = flops / res["jax"]["matmul_gflops"] / 1e9
        print(f"{precision:>9} {'floor':>10} jaxrec runs at {100 * best / res['jax']['step_s']:.0f}% of its matmul floor "
              f"({best:.2f} s; target ≥ 85%); at the floor it would reach {res['torch']['step_s'] / best:.2f}× peft")


if __name__ == "__main__":
  main()
