"""What every benchmark prints beside its figures, and the measurements they share.

CPUs differ between machines (a Sapphire Rapids runs bf16 matmuls through AMX in oneDNN, an EPYC does not), so a
figure without its machine is meaningless: `machine()` names the CPU model, core count and library versions.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time


def machine() -> str:
  """'AMD EPYC …, 2 cores, jaxlib 0.10.2, torch 2.13.0' (torch only when installed)."""
  model = platform.processor() or "unknown CPU"
  try:
    with open("/proc/cpuinfo") as f:
      model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), model)
  except OSError:
    pass
  import jaxlib

  parts = [model, f"{os.cpu_count()} cores", f"jaxlib {jaxlib.__version__}"]
  try:
    import torch

    parts.append(f"torch {torch.__version__}")
  except ImportError:
    pass
  return ", ".join(parts)


def layer_dots(cfg, n_tokens: int) -> list[tuple[int, int, int]]:
  """The [m, k] @ [k, n] products of one decoder layer's projections over `n_tokens` rows: q, k, v, o, gate, up,
  down."""
  d, f, q, kv = cfg.hidden_size, cfg.intermediate_size, cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
  return [(n_tokens, d, q), (n_tokens, d, kv), (n_tokens, d, kv), (n_tokens, q, d), (n_tokens, d, f),
          (n_tokens, d, f), (n_tokens, f, d)]


def matmul_rate(fw: str, precision: str, dots, repeats: int = 10) -> float:
  """GFLOP/s of one framework running each product of `dots` alone (best of `repeats` each, one after the other):
  total FLOPs / total time. This is the "matmul floor" of a model whose work is these products: no fusion, layout
  copy, norm or softmax in between, the library's own kernel at the model's own sizes (bf16: bf16 operands with
  float32 accumulation for JAX, as the decoder runs it)."""
  import numpy as np

  total_flops, total_s = 0.0, 0.0
  for m, k, n in dots:
    x, w = np.random.randn(m, k).astype(np.float32), np.random.randn(k, n).astype(np.float32)
    if fw == "jax":
      import jax
      import jax.numpy as jnp

      dt = jnp.bfloat16 if precision == "bf16" else jnp.float32
      pref = jnp.float32 if precision == "bf16" else None
      f = jax.jit(lambda x, w: jnp.dot(x, w, preferred_element_type=pref))
      xa, wa = jnp.asarray(x, dt), jnp.asarray(w, dt)
      run = lambda: jax.block_until_ready(f(xa, wa))  # noqa: E731
    else:
      import torch

      dt = torch.bfloat16 if precision == "bf16" else torch.float32
      xa, wa = torch.from_numpy(x).to(dt), torch.from_numpy(w).to(dt)
      run = lambda: xa @ wa  # noqa: E731
    run()
    best = float("inf")
    for _ in range(repeats):
      t0 = time.perf_counter()
      run()
      best = min(best, time.perf_counter() - t0)
    total_flops += 2.0 * m * k * n
    total_s += best
  return total_flops / total_s / 1e9


def run_child(script: str, args: list[str]) -> dict | None:
  """Runs `script` with `args` in a fresh process (its own peak memory, its own thread pools) and returns the JSON
  it printed on a 'RESULT ' line; prints the tail of stderr and returns None when it failed."""
  out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
  line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
  if line is None:
    print(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return None
  return json.loads(line[7:])


def decoder_flops(cfg, lengths) -> float:
  """Forward FLOPs of a Llama decoder over prompts of `lengths` tokens each, alone and unpadded: 2 × the layer
  matmuls per token, plus causal attention (QKᵀ and PV over the t earlier tokens of token t)."""
  d, h, kv, dh, f = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size
  per_token = 2 * (d * h * dh + 2 * d * kv * dh + h * dh * d + 3 * d * f)
  total = 0.0
  for t in lengths:
    total += cfg.num_layers * (per_token * t + 4 * h * dh * t * (t + 1) / 2)
  return total
