"""Trains a model described by a config file.

  python launch/train.py --config=configs/baselines/mf.py --workdir=workdirs/mf_ml1m --config.data.root=../shared/data

Any config field can be overridden with --config.<path>=<value> (e.g. --config.stages[0].optimizer.lr=3e-4); an
unknown field or an impossible value fails with one line `error: ...` and exit status 2. The model family
(config.model.family) picks the family in jaxrec/train/task.py:FAMILIES; the life cycle is the same for all. Re-running with the --workdir of a killed
run resumes it from its last checkpoint; a workdir another run is using is refused (it holds <workdir>/.lock). The
workdir receives config.json, metrics.jsonl, checkpoints/, metrics.json (final evaluation, also printed as a table)
and embeddings/.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from launch import _cli  # noqa: E402


def main(argv: list[str]) -> None:
  """Parses `argv` (argv[0] is the program) with flags of its own, so that tests can call it in-process."""
  fv = flags.FlagValues()
  config_flag = config_flags.DEFINE_config_file("config", None, "config file, e.g. configs/baselines/mf.py[:arg]",
                                                flag_values=fv, sys_argv=argv)
  workdir = flags.DEFINE_string("workdir", None, "run directory (created; an existing one is resumed)",
                                flag_values=fv)
  progress = flags.DEFINE_bool("progress", True, "show the progress bar", flag_values=fv)
  config = _cli.parse_main(argv, fv, workdir, config_flag)
  from jaxrec.train import task

  task.train(config, workdir.value, progress=progress.value)


if __name__ == "__main__":
  _cli.run(main)
