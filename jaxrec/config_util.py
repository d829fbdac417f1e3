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
