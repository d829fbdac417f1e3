"""Where does a step's time go? A jax.profiler trace of SmolLM2's forward pass (scoring) or LoRA train step, summed
per XLA operation, beside the matmul floor of the same work.

  python benchmarks/profile_ops.py --what=forward --precision=bf16 --layers=4 --batch=16 --seq=192
  python benchmarks/profile_ops.py --what=step --precision=f32 --batch=4 --seq=128 --hlo=/tmp/step.hlo

Operation names are XLA:CPU's thunks: `ynn_fusion` is a dot (with whatever elementwise work XLA fused into it) run
by YNNPACK, `transpose_copy_fusion` a layout copy, `multiply_convert_fusion` a norm or cast, and so on; the numbers
suffixed to repeated names are merged. Durations are per step; two cores run thunks side by side, so the op times
add up to more than the wall time. "floor" is the step's products run alone (`_common.matmul_rate`).
(Not named profile.py: with benchmarks/ on sys.path it would shadow the standard library's `profile`, which
transformers imports.)
"""

from __future__ import annotations

import argparse
import collections
import functools
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--what", default="forward", choices=("forward", "step"))
  p.add_argument("--precision", default="f32", choices=("f32", "bf16"))
  p.add_argument("--layers", type=int, default=-1, help="kept layers (<= 0: all 30)")
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--seq", type=int, default=192)
  p.add_argument("--attention", default="causal_blocks", choices=("einsum", "causal_blocks", "dpa"))
  p.add_argument("--top", type=int, default=20)
  p.add_argument("--hlo", default="", help="also write the compiled HLO here")
  args = p.parse_args()

  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from jaxrec.llm import backbone, loading, lora
  from jaxrec.llm.model import make_decoder

  dtype = jnp.bfloat16 if args.precision == "bf16" else jnp.float32
  cfg, base = loading.load_pretrained(None, dtype=dtype)
  cfg, base = backbone.truncate_layers(cfg, base, args.layers)
  lcfg = lora.LoraConfig(rank=8, alpha=16.0, dropout=0.0)
  adapters = lora.init(base, lcfg, jax.random.key(0))
  model = make_decoder(cfg, dtype=dtype, lora_cfg=lcfg, attention=args.attention)
  rng = np.random.RandomState(0)
  ids = jnp.asarray(rng.randint(3, cfg.vocab_size, (args.batch, args.seq)), jnp.int32)
  mask = jnp.ones_like(ids)
  labels = jnp.asarray(rng.randint(0, 2, (args.batch,)), jnp.int32)
  last = jnp.full((args.batch, 1), args.seq - 1, jnp.int32)
  tokens = jnp.asarray((7929, 2986), jnp.int32)

  def logits(ad, base):
    return model.apply({"params": base, "lora": ad}, ids, attention_mask=mask, logit_positions=last,
                       logit_token_ids=tokens)["logits"][:, 0]

  if args.what == "forward":
    fn = jax.jit(logits)
    state = (adapters, base)
    run = lambda s: (s, fn(*s))  # noqa: E731
  else:
    tx = optax.adamw(1e-4)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(ad, opt_state, base):
      loss_fn = lambda a: optax.softmax_cross_entropy_with_integer_labels(logits(a, base), labels).mean()  # noqa
      loss, g = jax.value_and_grad(loss_fn)(ad)
      updates, opt_state = tx.update(g, opt_state, ad)
      return optax.apply_updates(ad, updates), opt_state, loss

    fn = step
    state = (adapters, tx.init(adapters), base)

    def run(s):
      ad, opt, loss = fn(*s)
      return (ad, opt, s[2]), loss

  for _ in range(2):
    state, out = run(state)
  jax.block_until_ready(out)
  times = []
  for _ in range(3):
    t0 = time.perf_counter()
    state, out = run(state)
    jax.block_until_ready(out)
    times.append(time.perf_counter() - t0)
  wall = min(times)
  n_steps = 2
  with tempfile.TemporaryDirectory() as d:
    with jax.profiler.trace(d, create_perfetto_trace=True):
      for _ in range(n_steps):
        state, out = run(state)
      jax.block_until_ready(out)
    events = json.load(gzip.open(glob.glob(f"{d}/**/*.trace.json.gz", recursive=True)[0]))
  events = events["traceEvents"] if isinstance(events, dict) else events
  per_op, count = collections.Counter(), collections.Counter()
  for e in events:
    name = e.get("name", "")
    if e.get("ph") != "X" or name.startswith(("ThunkExecutor", "$", "Slinky", "PjRt", "Thunk", "end:")) or \
        "Executable" in name or name in ("ParseArguments",):
      continue
    key = re.sub(r"\.\d+$", "", name)
    per_op[key] += e.get("dur", 0) / 1e6 / n_steps
    count[key] += 1 / n_steps
  if args.hlo:
    lowered = fn.lower(*state) if args.what == "step" else fn.lower(adapters, base)
    with open(args.hlo, "w") as f:
      f.write(lowered.compile().as_text())

  tokens_n = args.batch * args.seq
  rate = _common.matmul_rate("jax", args.precision, _common.layer_dots(cfg, tokens_n))
  fwd = _common.decoder_flops(cfg, [args.seq] * args.batch)
  # the LoRA step: forward + the backward's input gradients (frozen kernels get none) ≈ 2 × forward
  flops = fwd * (2 if args.what == "step" else 1)
  floor = flops / rate / 1e9
  print(f"{args.what}, {args.precision}, {cfg.num_layers} layers, batch {args.batch} × {args.seq}: {wall * 1e3:.0f} ms "
        f"per call; matmul floor {floor * 1e3:.0f} ms at {rate:.0f} GFLOP/s = {100 * floor / wall:.0f}% of it; "
        f"{_common.machine()}")
  total = sum(per_op.values())
  print(f"{'ms / call':>10} {'calls':>6} {'share':>6}  operation")
  for name, secs in per_op.most_common(args.top):
    print(f"{secs * 1e3:10.1f} {count[name]:6.0f} {100 * secs / total:5.1f}%  {name}")


if __name__ == "__main__":
  main()
