"""Where jaxrec looks for data and keeps its caches.

Data root: `--config.data.root`, else `$JAXREC_DATA`, else `<cache>/data`.
Cache: `$JAXREC_CACHE`, else `$XDG_CACHE_HOME/jaxrec`, else `~/.cache/jaxrec`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import shutil
import tempfile


def cache_dir() -> pathlib.Path:
  root = os.environ.get("JAXREC_CACHE")
  if not root:
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = os.path.join(xdg, "jaxrec")
  return pathlib.Path(root)


def data_root(configured: str | None = None) -> pathlib.Path:
  if configured:
    return pathlib.Path(configured).expanduser()
  env = os.environ.get("JAXREC_DATA")
  if env:
    return pathlib.Path(env).expanduser()
  return cache_dir() / "data"


@contextlib.contextmanager
def atomic_dir(final: pathlib.Path | str):
  """Yields a temporary directory next to `final`; renames it to `final` only if the block succeeds.

  Readers therefore see either nothing or a complete directory, never a half-written one.
  """
  final = pathlib.Path(final)
  final.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
  try:
    yield tmp
    if final.exists():
      shutil.rmtree(final)
    os.replace(tmp, final)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(final: pathlib.Path | str, mode: str = "wb"):
  """Yields a file object for a temporary file; on success it is fsynced and renamed onto `final`."""
  final = pathlib.Path(final)
  final.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
  try:
    with os.fdopen(fd, mode) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, final)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def sha256_file(path: pathlib.Path | str) -> str:
  """Hex SHA-256 of a file, read in 1 MiB chunks."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()
