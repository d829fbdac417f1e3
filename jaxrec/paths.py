"""Where jaxrec looks for data and keeps its caches.

Data root: `--config.data.root`, else `$JAXREC_DATA`, else `<cache>/data`.
Cache: `$JAXREC_CACHE`, else `$XDG_CACHE_HOME/jaxrec`, else `~/.cache/jaxrec`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pathlib
import shutil
import tempfile

from jaxrec.errors import JaxrecError


@functools.cache
def _umask() -> int:
  """The process umask, read once (os.umask can only be read by setting it)."""
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


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
  os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results should read like any file the user writes
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


def _stamp_path(path: pathlib.Path) -> pathlib.Path:
  return path.with_name(f".{path.name}.stamp.json")


REFETCH = "delete it and re-run to fetch it again"


def verify_file(path: pathlib.Path | str, sha256: str | None = None, how: str = REFETCH) -> pathlib.Path:
  """`path` after checking its SHA-256 against `sha256` (or, when None, against the one recorded when it was
  cached; a file with neither is recorded as it is); one line naming the file and how to refetch it when it
  differs.

  The digest is recorded with the file's (size, mtime) in a stamp beside it (`.<name>.stamp.json`), so a file
  unchanged since its last check is not re-hashed; any change of size or mtime re-hashes it. `how` ends the error:
  what to do about it.
  """
  path = pathlib.Path(path)
  st = path.stat()
  stamp_path = _stamp_path(path)
  try:
    stamp = json.loads(stamp_path.read_text())
  except (OSError, ValueError):
    stamp = {}
  expected = sha256 or stamp.get("sha256")
  if stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns and expected \
      and stamp.get("sha256") == expected:
    return path
  digest = sha256_file(path)
  if expected is None:  # cached before stamps existed: trusted once, checked from now on
    record_file(path, digest)
    return path
  if digest != expected:
    raise JaxrecError(f"{path}: SHA-256 {digest[:16]}… does not match the expected {expected[:16]}… (corrupted or "
                      f"replaced); {how}")
  record_file(path, digest)
  return path


def record_file(path: pathlib.Path | str, digest: str | None = None) -> None:
  """Writes the stamp `verify_file` reads: (size, mtime, sha256) of `path` as it is now."""
  path = pathlib.Path(path)
  st = path.stat()
  stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest or sha256_file(path)}
  try:
    with atomic_file(_stamp_path(path), "w") as f:
      json.dump(stamp, f)
  except OSError:
    pass  # a read-only cache still verifies, by hashing every time
