"""Test-wide setup.

The simulated 2-device CPU mesh must be requested before jax is imported anywhere, so it is set here, at the top of
the first module pytest imports. Every test then sees 2 CPU devices; un-sharded code runs on device 0.
"""

import os
import pathlib

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """`../shared/data` next to the checkout (always present in CI); a missing one fails, never skips."""
  path = pathlib.Path(os.environ.get("JAXREC_SHARED_DATA", REPO.parent / "shared" / "data"))
  assert path.is_dir(), f"real data expected at {path} (../shared/data next to the checkout)"
  return path
