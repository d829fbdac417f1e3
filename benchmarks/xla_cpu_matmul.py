"""Which matmul path of XLA:CPU is fastest here? The decoder's dominant dots under each library option of the
installed jaxlib (its default; oneDNN, XNNPACK, YNNPACK when asked), with torch's rate beside them.

  python benchmarks/xla_cpu_matmul.py

Each option runs in its own process (XLA_FLAGS are read once, when jax starts). Shapes: SmolLM2's MLP up and down
projections over 16 prompts × 128 tokens ([2048, 576] @ [576, 1536] and [2048, 1536] @ [1536, 576]) and the
attention output ([2048, 576] @ [576, 576]). bf16 runs bf16 operands with float32 accumulation, as the decoder
does. "max rel err" compares with a float64 numpy product: an option that is fast but wrong is not kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

SHAPES = ((2048, 576, 1536), (2048, 1536, 576), (2048, 576, 576))
OPTIONS = {
    "default": "",  # what the installed jaxlib picks by itself
    "onednn": "--xla_cpu_use_onednn=true",
    "onednn dot fusion": "--xla_cpu_experimental_onednn_fusion_type=LIBRARY_FUSION_TYPE_DOT",
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "xnn dot fusion": "--xla_cpu_experimental_xnn_fusion_type=LIBRARY_FUSION_TYPE_DOT",
    "ynn dot fusion": "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT",
}


def _child(precision: str) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np

  out = {}
  for m, k, n in SHAPES:
    rng = np.random.RandomState(0)
    x, w = rng.randn(m, k).astype(np.float32), rng.randn(k, n).astype(np.float32)
    dt = jnp.bfloat16 if precision == "bf16" else jnp.float32
    pref = jnp.float32 if precision == "bf16" else None
    f = jax.jit(lambda x, w: jnp.dot(x, w, preferred_element_type=pref))
    xj, wj = jnp.asarray(x, dt), jnp.asarray(w, dt)
    y = np.asarray(f(xj, wj), np.float64)
    ref = np.asarray(xj, np.float64) @ np.asarray(wj, np.float64)
    err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
    best = float("inf")
    for _ in range(10):
      t0 = time.perf_counter()
      jax.block_until_ready(f(xj, wj))
      best = min(best, time.perf_counter() - t0)
    out[f"{m}x{k}x{n}"] = {"gflops": 2 * m * k * n / best / 1e9, "rel_err": err}
  return out


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--precisions", default="f32,bf16")
  p.add_argument("--output", default="")
  p.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    print("RESULT " + json.dumps(_child(args.child)))
    return
  print(f"XLA:CPU matmul paths; {_common.machine()}")
  rows = []
  for precision in args.precisions.split(","):
    for name, flag in OPTIONS.items():
      env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + flag).strip())
      res = subprocess.run([sys.executable, __file__, f"--child={precision}"], capture_output=True, text=True,
                           env=env)
      line = next((l for l in res.stdout.splitlines() if l.startswith("RESULT ")), None)
      if line is None:
        print(f"{precision:>5} {name:<20} failed: {res.stderr.strip().splitlines()[-1:]}")
        continue
      for shape, r in json.loads(line[7:]).items():
        rows.append(dict(precision=precision, option=name, flag=flag, shape=shape, **r))
        print(f"{precision:>5} {name:<20} {shape:>14} {r['gflops']:8.1f} GFLOP/s   max rel err {r['rel_err']:.1e}")
    for m, k, n in SHAPES:
      rate = _common.matmul_rate("torch", precision, [(m, k, n)])
      rows.append(dict(precision=precision, option="torch", flag="", shape=f"{m}x{k}x{n}", gflops=rate))
      print(f"{precision:>5} {'torch':<20} {f'{m}x{k}x{n}':>14} {rate:8.1f} GFLOP/s")
  if args.output:
    with open(args.output, "w") as f:
      json.dump({"machine": _common.machine(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
  main()
