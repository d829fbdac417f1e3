"""Test-wide setup.

The simulated 2-device CPU mesh must be requested before jax is imported anywhere, so it is set here, at the top of
the first module pytest imports. Every test then sees 2 CPU devices; un-sharded code runs on device 0.

Compilation, not arithmetic, is most of the suite's time (tiny models, a few steps each), so:
  - XLA:CPU compiles without LLVM optimisation and with its older, cheaper fusion emitters: a tiny LLM's train
    step compiles in ~1.5 s instead of ~11 s, and even the SmolLM2-135M tests run no slower;
  - XLA's persistent compilation cache points at a directory of this session: each training run jits fresh
    functions (jax's in-memory cache is per function object), so a resumed run, a second config with the same
    shapes or the evaluation of a finished run would otherwise compile every program again.
Both go through the environment, before jax is imported, so the CLI tests' subprocesses get them too.
The suite runs on two pytest-xdist workers (pyproject's addopts): most of its time is compiling, which is
single-threaded, so two workers on two cores share the work (measured on a 2-core Xeon: 11 min 0 s on one worker,
7 min 0 s on two).
"""

import atexit
import os
import pathlib
import shutil
import tempfile

# Flags given in XLA_FLAGS come later and win.
os.environ["XLA_FLAGS"] = ("--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false "
                           + os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxrec-xla-cache-")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
if os.environ.get("PYTEST_XDIST_WORKER"):
  # pytest-xdist workers (addopts: -n 2) inherit the controller's directory; jax only locks its cache when eviction
  # is on, so each worker (and the CLIs it starts) gets a directory of its own inside it, removed with it.
  os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(os.environ["JAX_COMPILATION_CACHE_DIR"],
                                                         os.environ["PYTEST_XDIST_WORKER"])
  os.makedirs(os.environ["JAX_COMPILATION_CACHE_DIR"], exist_ok=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # tiny programs recur too
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """`../shared/data` next to the checkout (always present in CI); a missing one fails, never skips."""
  path = pathlib.Path(os.environ.get("JAXREC_SHARED_DATA", REPO.parent / "shared" / "data"))
  assert path.is_dir(), f"real data expected at {path} (../shared/data next to the checkout)"
  return path
