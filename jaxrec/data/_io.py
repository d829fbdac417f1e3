"""File helpers shared by the dataset modules: presence checks, strict line readers, id remapping, budget caps."""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np

from jaxrec.errors import JaxrecError


def require(files: Sequence[pathlib.Path], dataset: str, how: str) -> None:
  """One-line error naming every missing file (where it was looked for) and how to obtain it."""
  missing = [str(f) for f in files if not f.is_file()]
  if missing:
    raise JaxrecError(f"{dataset}: missing file(s) {', '.join(missing)}; {how}")


def read_text(path: pathlib.Path, encoding: str = "utf-8") -> str:
  try:
    return path.read_bytes().decode(encoding)
  except UnicodeDecodeError as e:
    line = path.read_bytes()[:e.start].count(b"\n") + 1
    raise JaxrecError(f"{path}:{line}: bytes are not valid {encoding}") from None


def read_delimited(path: pathlib.Path, sep: str, n_fields: int, int_fields: Sequence[int] = (),
                   encoding: str = "utf-8", skip_header: bool = False, what: str = "") -> list[list[str]]:
  """Lines of `path` split on `sep`; a line with another field count or a non-integer in `int_fields` is an error
  naming the file, the line number and what was expected."""
  rows = []
  lines = read_text(path, encoding).splitlines()
  for no, line in enumerate(lines, start=1):
    if (skip_header and no == 1) or not line.strip():
      continue
    fields = line.split(sep)
    if len(fields) != n_fields:
      raise JaxrecError(f"{path}:{no}: expected {n_fields} fields separated by {sep!r} ({what}), got {len(fields)}")
    for k in int_fields:
      if not fields[k].strip().lstrip("-").isdigit():
        raise JaxrecError(f"{path}:{no}: field {k + 1} {fields[k]!r} is not an integer ({what})")
    rows.append(fields)
  return rows


def remap(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Ids 1..n in order of first appearance; returns (new ids [N], original value of each new id [n + 1])."""
  uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
  order = np.argsort(first, kind="stable")  # unique values by first appearance
  rank = np.empty(len(uniq), np.int64)
  rank[order] = np.arange(1, len(uniq) + 1)
  originals = np.concatenate([np.zeros(1, values.dtype), uniq[order]])  # index 0 = padding
  return rank[inverse.reshape(-1)], originals


def cap_rows(n: int, cap: int, seed: int) -> np.ndarray | None:
  """Rows kept under a budget cap (-1 = all): a seeded subset, in original order; None when nothing is cut."""
  if cap is None or cap < 0 or cap >= n:
    return None
  return np.sort(np.random.default_rng(seed).permutation(n)[:cap])
