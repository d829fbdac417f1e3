"""Fault injection for the kill -9 tests: `JAXREC_KILL_AT=<point>:<n>` SIGKILLs this process at the n-th <point>.

  step   right after the n-th train step this process dispatched
  save   inside the n-th checkpoint save: its files are written into orbax's temporary directory, the rename that
         commits them has not happened

Unset (always, outside the tests) nothing here does anything.
"""

from __future__ import annotations

import contextlib
import os
import signal

_counts: dict[str, int] = {}


def _due(point: str) -> bool:
  spec = os.environ.get("JAXREC_KILL_AT", "")
  name, _, n = spec.partition(":")
  if name != point:
    return False
  _counts[point] = _counts.get(point, 0) + 1
  return _counts[point] == int(n)


def kill() -> None:
  os.kill(os.getpid(), signal.SIGKILL)


def at(point: str) -> None:
  if _due(point):
    kill()


@contextlib.contextmanager
def during_save():
  """Around one orbax save: when due, the commit (temporary directory → final name) kills the process instead."""
  if not _due("save"):
    yield
    return
  from orbax.checkpoint._src.path import atomicity  # pylint: disable=g-import-not-at-top

  async def killed(self, *args, **kwargs):  # noqa: ARG001
    kill()

  classes = [atomicity.AtomicRenameTemporaryPath, atomicity.CommitFileTemporaryPath]
  saved = [c.finalize for c in classes]
  for c in classes:
    c.finalize = killed
  try:
    yield
  finally:
    for c, f in zip(classes, saved):
      c.finalize = f
