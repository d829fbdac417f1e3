"""Evaluates a trained run on a split and prints the metrics table.

  python launch/evaluate.py --workdir=workdirs/mf_ml1m --split=valid
  python launch/evaluate.py --workdir=workdirs/mf_ml1m --split=../shared/data/ml1m-collm/valid.parquet

--split is a split name of the run's dataset or a file in the same format as the dataset's (e.g. a CoLLM parquet).
The run's config.json is re-read, the model rebuilt and its best checkpoint restored. Writes JSON to --output
(default <workdir>/eval/<split name or file stem>.json). Errors print one line `error: ...` and exit with 2.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import app, flags, logging  # noqa: E402

from jaxrec.errors import JaxrecError  # noqa: E402
from launch import _cli  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "workdir of a launch/train.py run")
_SPLIT = flags.DEFINE_string("split", "valid", "split name, or path of a split file in the dataset's format")
_OUTPUT = flags.DEFINE_string("output", None, "where to write the metrics JSON")


def main(argv):
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  if len(argv) > 1:
    _cli.fail(f"unexpected arguments {argv[1:]}")
  if not _WORKDIR.value:
    _cli.fail("--workdir is required")
  try:
    import pathlib
    path = pathlib.Path(_WORKDIR.value) / "config.json"
    if not path.is_file():
      raise JaxrecError(f"{path}: missing; expected the workdir of a launch/train.py run")
    from jaxrec.train import task

    task.evaluate(_WORKDIR.value, _SPLIT.value, _OUTPUT.value)
  except JaxrecError as e:
    _cli.fail(str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=_cli.parse_flags)
