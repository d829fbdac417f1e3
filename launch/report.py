"""Rewrites a finished multi-scale run's results.md, e.g. beside CF baselines trained after it (nothing retrains).

  python launch/report.py --workdir=workdirs/ms_ml1m \\
      --baseline="MF (BPR)=workdirs/cf1m_u300/mf" --baseline="LightGCN=workdirs/cf1m_u300/lightgcn"

Each --baseline is LABEL=WORKDIR of a finished `launch/train.py` CF run evaluated on the same users (for a sampled
multi-scale run: `--config.eval.users=` its budget.eval_users); without any, config.report.baselines of the run is
used. Errors print one line `error: ...` and exit with 2.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import app, flags  # noqa: E402

from jaxrec.errors import JaxrecError  # noqa: E402
from launch import _cli  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "workdir of a finished multi-scale launch/train.py run")
_BASELINES = flags.DEFINE_multi_string("baseline", [], "LABEL=WORKDIR of a finished CF baseline run")


def parse_baselines(items) -> dict[str, str] | None:
  out = {}
  for item in items:
    label, sep, path = item.partition("=")
    if not sep or not label or not path:
      raise JaxrecError(f"--baseline={item!r}: expected LABEL=WORKDIR")
    out[label] = path
  return out or None


def main(argv):
  if len(argv) > 1:
    _cli.fail(f"unexpected arguments {argv[1:]}")
  if not _WORKDIR.value:
    _cli.fail("--workdir is required")
  try:
    from jaxrec.train import task
    path = task.report(_WORKDIR.value, parse_baselines(_BASELINES.value))
    print(path.read_text(), end="", flush=True)
  except JaxrecError as e:
    _cli.fail(str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=_cli.parse_flags)
