"""Trains a model described by a config file.

  python launch/train.py --config=configs/baselines/mf.py --workdir=workdirs/mf_ml1m --config.data.root=../shared/data

Any config field can be overridden with --config.<path>=<value> (e.g. --config.stages[0].optimizer.lr=3e-4); an
unknown field or an impossible value fails with one line `error: ...` and exit status 2. The model family
(config.model.family) picks the trainer from launch/_cli.py:FAMILIES. Re-running with the --workdir of a killed
run resumes it from its last checkpoint. The workdir receives config.json, metrics.jsonl, checkpoints/,
metrics.json (final evaluation, also printed as a table) and embeddings/.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxrec.errors import JaxrecError  # noqa: E402
from launch import _cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "config file, e.g. configs/baselines/mf.py[:arg]")
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (created; an existing one is resumed)")
_PROGRESS = flags.DEFINE_bool("progress", True, "show the progress bar")


def main(argv):
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  if len(argv) > 1:
    _cli.fail(f"unexpected arguments {argv[1:]}")
  config = _cli.config_value(_CONFIG)
  if not _WORKDIR.value:
    _cli.fail("--workdir is required")
  try:
    family = config.model.get("family", "cf") if "model" in config else None
    _cli.family_module(family).train(config, _WORKDIR.value, progress=_PROGRESS.value)
  except JaxrecError as e:
    _cli.fail(str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=_cli.parse_flags)
