"""Strict ml_collections updates and one-line value checks, shared by every config schema in jaxrec.

The lowest layer (imports only `jaxrec.errors`), so data, models, multiscale, index and train schemas all report a
bad field the same way: `config.model.lora.rank: expected an integer >= 0, got -1`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ml_collections

from jaxrec.errors import JaxrecError


def update_strict(cfg: ml_collections.ConfigDict, overrides: Mapping, where: str) -> None:
  """Applies nested `overrides` to `cfg`; a key the schema lacks fails naming `<where>.<key>` and the known keys."""
  for key, value in overrides.items():
    if key not in cfg:
      raise JaxrecError(f"{where}.{key}: unknown field; expected one of {sorted(cfg.keys())}")
    if isinstance(value, Mapping) and isinstance(cfg[key], ml_collections.ConfigDict):
      update_strict(cfg[key], value, f"{where}.{key}")
    else:
      cfg[key] = value


def checker(prefix: str) -> Callable[[bool, str, str, object], None]:
  """`check(cond, field, expected, value)` raising `<prefix>.<field>: expected <expected>, got <value>`."""

  def check(cond: bool, field: str, expected: str, value) -> None:
    if not cond:
      raise JaxrecError(f"{prefix}.{field}: expected {expected}, got {value!r}")

  return check


def parse_arg(arg: str | None, *, choices: Mapping[str, tuple] | None = None, **defaults) -> ml_collections.ConfigDict:
  """The `:arg` of `--config=file.py:arg` as a ConfigDict: `defaults` overridden by its comma-separated tokens.

  A token is `key=value` (converted to the default's type), a bare `key` (True, for a bool default) or a bare value
  listed in `choices[key]` (e.g. 'ml100k' for dataset, 'bpr' for variant). An unknown token or key, or two values
  for one key, fails in one line naming the token and what was expected. As big_vision's `parse_arg`.
  """
  choices = dict(choices or {})
  out = dict(defaults)
  given: set[str] = set()
  expected = sorted(defaults) + sorted(v for vals in choices.values() for v in vals if v)
  for token in (t for t in (arg or "").replace(":", ",").split(",") if t):
    key, sep, value = token.partition("=")
    if sep:
      if key not in defaults:
        raise JaxrecError(f"config arg {arg!r}: unknown key {key!r}; expected one of {sorted(defaults)}")
      out[key] = _typed(value, defaults[key], arg, key)
    elif key in defaults and isinstance(defaults[key], bool):
      out[key] = True
    else:
      owner = [k for k, vals in choices.items() if key in vals]
      if not owner:
        raise JaxrecError(f"config arg {arg!r}: unknown token {token!r}; expected one of {expected}")
      key, out[key] = owner[0], token
    if key in given and key in choices:
      raise JaxrecError(f"config arg {arg!r}: more than one {key} ({out[key]!r} and an earlier one)")
    given.add(key)
  return ml_collections.ConfigDict(out)


def _typed(value: str, default, arg, key):
  if isinstance(default, bool):
    if value.lower() not in ("true", "false", "1", "0"):
      raise JaxrecError(f"config arg {arg!r}: {key}={value!r}; expected true or false")
    return value.lower() in ("true", "1")
  try:
    return type(default)(value) if default is not None else value
  except ValueError:
    raise JaxrecError(f"config arg {arg!r}: {key}={value!r}; expected {type(default).__name__}") from None


def sibling_config(file: str, name: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """`get_config(arg)` of the config file `name` (a path relative to `file`'s folder): how an experiment derived
  from another one reads it, e.g. the CF model a CoLLM config trains first (`baselines/mf.py`)."""
  import importlib.util
  import pathlib

  path = pathlib.Path(file).resolve().parent / name
  spec = importlib.util.spec_from_file_location(f"_jaxrec_config_{path.stem}", path)
  if spec is None or not path.is_file():
    raise JaxrecError(f"{path}: config file not found (read by {file})")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)
