"""Shared by the launch scripts: flag parsing and one-line error reporting. (The model families are
`jaxrec.train.task.FAMILIES`.)"""

from __future__ import annotations

import errno
import importlib.util
import pathlib
import re
import sys

from absl import flags, logging

from jaxrec.errors import JaxrecError

def fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(2)


def _bad_override(argv) -> str | None:
  """Names the first --config.<path>=... override that the config file does not have, if any."""
  from ml_collections.config_flags import config_path

  spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if spec is None:
    return None
  file, _, arg = spec.partition(":")
  try:
    module_spec = importlib.util.spec_from_file_location("_config_under_check", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(arg) if arg else module.get_config()
  except JaxrecError as e:
    return str(e)
  except Exception as e:  # pylint: disable=broad-except
    return f"--config={spec}: cannot load the config file ({type(e).__name__}: {str(e).splitlines()[0]})"
  for a in argv:
    if a.startswith("--config.") and "=" in a:
      path = a[len("--config."):].split("=", 1)[0]
      try:
        config_path.get_value(path, config)
      except (AttributeError, KeyError, IndexError, ValueError, TypeError):
        return f"--config.{path}: no such config field"
  return None


def parse_flags(argv, flag_values=None):
  """absl flag parsing whose failures (unknown config field, bad value, missing file) print one line, exit 2."""
  try:
    return (flag_values or flags.FLAGS)(argv)
  except Exception as e:  # pylint: disable=broad-except
    fail(_bad_override(argv) or str(e).strip().splitlines()[0])


def parse_main(argv, flag_values, workdir_flag, config_flag=None):
  """What every launch `main` does first: parse `argv` with its own flags, then one line for stray arguments, an
  unloadable config or a missing --workdir. Returns the config (None when the script takes none)."""
  rest = parse_flags(argv, flag_values)
  if len(rest) > 1:
    fail(f"unexpected arguments {rest[1:]}")
  config = config_value(config_flag) if config_flag is not None else None
  if not workdir_flag.value:
    fail("--workdir is required")
  return config


def run(main, argv=None) -> None:
  """Runs `main(argv)` as a launch script: a JaxrecError, or a full disk, ends in one line `error: ...` and exit 2.

  For scripts whose `main` parses its own flags (callable in-process, as the tests do); the others use absl's
  app.run with `parse_flags`.
  """
  argv = list(sys.argv if argv is None else argv)
  if not flags.FLAGS.is_parsed():
    flags.FLAGS(argv[:1])  # absl logging (orbax logs through it) expects parsed flags
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  try:
    main(argv)
  except JaxrecError as e:
    fail(str(e))
  except Exception as e:  # pylint: disable=broad-except
    where = _disk_full(e)
    if where is None:
      raise
    fail(f"no space left on device while writing {where}; completed checkpoints are intact: free some space and "
         f"re-run the same command to resume")


def _disk_full(e: BaseException) -> str | None:
  """The file being written when `e` (or what caused it) is a full disk, else None. Orbax's tensorstore writer
  reports it as a ValueError ('RESOURCE_EXHAUSTED ... Failed writing: "<file>" ... No space left on device')."""
  while e is not None:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
      return str(e.filename or "the workdir")
    if "No space left on device" in str(e):
      m = re.search(r'Failed writing: "([^"]+)"', str(e))
      return m.group(1) if m else "the workdir"
    e = e.__cause__ or e.__context__
  return None


def config_value(config_flag):
  """The parsed config, or a one-line failure when the file could not be loaded."""
  try:
    config = config_flag.value
  except Exception as e:  # pylint: disable=broad-except
    fail(str(e).strip().splitlines()[0])
  if config is None:
    fail("--config=configs/<file>.py is required")
  return config


def repo_root() -> pathlib.Path:
  return pathlib.Path(__file__).resolve().parents[1]
