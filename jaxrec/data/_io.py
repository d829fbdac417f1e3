"""File helpers shared by the dataset modules: presence checks, strict line and Parquet readers, id remapping,
budget caps."""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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


# Parquet column kinds a reader may ask for, and the Arrow types that satisfy each.
_KINDS = {
    "int": pa.types.is_integer,
    "number": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t),
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "list<int>": lambda t: pa.types.is_list(t) and pa.types.is_integer(t.value_type),
    "list<string>": lambda t: pa.types.is_list(t) and (pa.types.is_string(t.value_type)
                                                      or pa.types.is_large_string(t.value_type)),
}


def read_parquet(path: pathlib.Path, columns: dict[str, str], exact: bool = True) -> pa.Table:
  """The Parquet table at `path`, after checking that each of `columns` ({name: kind}, kinds as in _KINDS) exists,
  has that type and holds no null (nor null list elements); `exact`: no other column either. Every failure is one
  line naming the file, the column, what was expected and the first bad row."""
  try:
    table = pq.read_table(path)
  except (pa.ArrowInvalid, OSError) as e:
    raise JaxrecError(f"{path}: not a readable Parquet file ({e})") from None
  cols = set(table.column_names)
  missing, extra = sorted(set(columns) - cols), sorted(cols - set(columns))
  if missing or (exact and extra):
    raise JaxrecError(f"{path}: unexpected columns (unknown: {extra or 'none'}, missing: {missing or 'none'}); "
                      f"expected {', '.join(columns)}")
  for name, kind in columns.items():
    col = table.column(name).combine_chunks()
    if not _KINDS[kind](col.type):
      raise JaxrecError(f"{path}: column {name!r} has type {col.type}; expected {kind}")
    if col.null_count:
      row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
      raise JaxrecError(f"{path}: column {name!r} row {row} is null; expected {kind} in every row")
    if kind.startswith("list") and col.values.null_count:
      flat_row = col.value_parent_indices().to_numpy()[np.flatnonzero(col.values.is_null().to_numpy(
          zero_copy_only=False))[0]]
      raise JaxrecError(f"{path}: column {name!r} row {int(flat_row)} holds a null element; expected {kind}")
  return table
