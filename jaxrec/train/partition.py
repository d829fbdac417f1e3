"""Trainable / frozen split of a parameter pytree, decided by regex rules over '/'-joined paths.

Params are nested dicts (e.g. flax variables {'params': {'user_embed': {'embedding': ...}}}, path
'params/user_embed/embedding'). `partition` returns two nested dicts holding disjoint subsets of the leaves (empty
branches dropped); `combine` merges them back. Both are pure and work inside jit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from jaxrec.errors import JaxrecError
from jaxrec.tree import flatten, unflatten

TRAIN, FROZEN = "train", "frozen"
Rules = Sequence[tuple[str, str]]


def rules_from_stage(trainable: Sequence[str], frozen: Sequence[str] = ()) -> list[tuple[str, str]]:
  """Stage config → rules: `frozen` regexes take precedence over `trainable` ones; everything else is frozen."""
  return [(r, FROZEN) for r in frozen] + [(r, TRAIN) for r in trainable]


def decide(path: str, rules: Rules) -> str:
  """'train' or 'frozen' for one path: the first rule whose regex fully matches the path wins; default frozen."""
  for pattern, verdict in rules:
    if re.fullmatch(pattern, path):
      return verdict
  return FROZEN


def check_rules(rules: Rules, where: str = "rules") -> None:
  """Raises JaxrecError on a rule that is not (valid regex, 'train' | 'frozen')."""
  for i, rule in enumerate(rules):
    if len(rule) != 2 or rule[1] not in (TRAIN, FROZEN):
      raise JaxrecError(f"{where}[{i}]: expected (regex, 'train' | 'frozen'), got {rule!r}")
    try:
      re.compile(rule[0])
    except re.error as e:
      raise JaxrecError(f"{where}[{i}]: invalid regex {rule[0]!r}: {e}") from None


def partition(params: Mapping, rules: Rules) -> tuple[dict, dict]:
  """(trainable, frozen) nested dicts. Raises JaxrecError if a non-float leaf would train or nothing trains."""
  check_rules(rules)
  trainable, frozen = {}, {}
  for path, leaf in flatten(params).items():
    if decide(path, rules) == TRAIN:
      if not np.issubdtype(np.asarray(leaf).dtype if not hasattr(leaf, "dtype") else leaf.dtype, np.floating):
        raise JaxrecError(f"trainable rule matches non-float parameter {path!r} ({leaf.dtype})")
      trainable[path] = leaf
    else:
      frozen[path] = leaf
  if not trainable:
    raise JaxrecError(f"no parameter matches the trainable rules {list(rules)!r}; paths look like "
                      f"{next(iter(flatten(params)), '<none>')!r}")
  return unflatten(trainable), unflatten(frozen)


def overlay(base: Mapping, update: Mapping) -> dict:
  """`base` with the leaves of `update` replacing the ones at the same paths (used to carry a stage's result)."""
  flat = flatten(base)
  for path, leaf in flatten(update).items():
    if path not in flat:
      raise JaxrecError(f"checkpoint parameter {path!r} does not exist in the model")
    flat[path] = leaf
  return unflatten(flat)
