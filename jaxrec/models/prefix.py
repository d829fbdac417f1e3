"""Shared-prefix P(Yes) scoring: rows whose prompts start alike (one user's re-ranking candidates; CoLLM rows of one
user with one history) run their common prefix once, keep its per-layer keys / values, and score each row's suffix
against them. Exact: the same tokens, positions and masks as scoring each prompt alone (tests: ≤ 1e-5 in f32).

  groups    rows with the same user and history (so the `<UserID>` slot's CF vector is the same for all of them)
  prefix    a group's longest common token prefix, cut before the first `<TargetItemID>` slot of any of its rows
            (two items with one title share tokens up to their slot, not their vectors) and before each row's last
            token (the answer is read there)
  batch     whole groups up to `batch_size` suffix rows (a larger group is cut into chunks, each re-running the
            prefix); the prefix batch [G, Tp] and the suffix batch [B, Ts] are left-padded, G to a power of two,
            B to `batch_size` (repeating the last row), Ts to a multiple of `pad_multiple` and Tp of twice that:
            few programs compile.
            A batch holds a power of two of groups, so the prefix batch is seldom padded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from jaxrec.data import prompts

_ROW_FIELDS = ("user", "item", "history", "history_label")  # what the CF source reads


def group_rows(fields: Mapping[str, np.ndarray]) -> np.ndarray:
  """[N] group ids: rows with equal user and history (all of it, not only what the prompt shows) share one."""
  user = np.asarray(fields["user"], np.int64)
  history = np.asarray(fields["history"], np.int64).reshape(len(user), -1)
  keys = np.concatenate([user[:, None], history], axis=1)  # [N, 1 + H]
  _, ids = np.unique(keys, axis=0, return_inverse=True)
  return ids.reshape(-1)


def row_fields(split) -> dict[str, np.ndarray]:
  """The per-row arrays a Split gives the scorer (grouping and the CF source): user, item, history, history_label."""
  return {f: getattr(split, f) for f in _ROW_FIELDS}


def _members(groups: np.ndarray) -> list[np.ndarray]:
  """Rows of each group, in order of first appearance."""
  order: dict[int, list[int]] = {}
  for r, g in enumerate(np.asarray(groups)):
    order.setdefault(int(g), []).append(r)
  return [np.asarray(rows, np.int64) for rows in order.values()]


def prefix_length(encodings: Sequence[dict]) -> int:
  """The tokens the rows of one group share and may compute once (see the module docstring)."""
  ids = [e["ids"] for e in encodings]
  cut = min(len(x) for x in ids) - 1  # each row keeps at least its last token
  first = ids[0][:cut]
  for x in ids[1:]:
    diff = np.flatnonzero(x[:cut] != first[:cut])
    cut = min(cut, int(diff[0]) if len(diff) else cut)
  for e in encodings:
    item = e["item_pos"][e["item_pos"] >= 0]
    if len(item):
      cut = min(cut, int(item.min()))
  return max(cut, 0)


def _part(e: dict, lo: int, hi: int | None) -> dict:
  """Tokens [lo, hi) of an encoding with its slot positions moved (-1 where a slot falls outside)."""
  ids = e["ids"][lo:hi]
  end = len(e["ids"]) if hi is None else hi

  def shift(pos):
    return np.where((pos >= lo) & (pos < end), pos - lo, -1).astype(np.int32)

  return dict(ids=ids, user_pos=shift(e["user_pos"]), item_pos=shift(e["item_pos"]))


def _pow2(n: int) -> int:
  return 1 << max(0, int(n) - 1).bit_length()


def plan(encodings: Sequence[dict], groups: np.ndarray, batch_size: int) -> list[list[tuple[int, np.ndarray]]]:
  """Batches as lists of (prefix length, rows of one group); groups go in prefix-length order so that batches pad
  little, and a batch holds at most `batch_size` rows."""
  chunks = []
  for rows in _members(groups):
    p = prefix_length([encodings[r] for r in rows])
    for lo in range(0, len(rows), batch_size):
      chunk = rows[lo:lo + batch_size]
      chunks.append((p, int(max(len(encodings[r]["ids"]) for r in chunk)) - p, chunk))
  chunks.sort(key=lambda c: (c[0], c[1]))
  # A batch closes with a power-of-two number of groups (the prefix batch is padded to one, and a padded prefix
  # costs a whole prompt prefix); groups beyond it move to the next batch, which costs a few suffix rows at most.
  batches, current = [], []

  def close():
    keep = 1 << (len(current).bit_length() - 1)
    batches.append(current[:keep])
    return current[keep:]

  for p, _, rows in chunks:
    while current and sum(len(r) for _, r in current) + len(rows) > batch_size:
      current = close()
    current.append((p, rows))
  while current:
    current = close()
  return batches


def collate(encodings: Sequence[dict], fields: Mapping[str, np.ndarray], batch: list[tuple[int, np.ndarray]],
            batch_size: int, pad_id: int, pad_multiple: int, min_groups: int = 1) -> tuple[dict, dict, np.ndarray]:
  """(prefix batch [G, Tp], suffix batch [B, Ts] with 'group' [B], the real rows [≤ B]) of one planned batch."""
  pre_enc, pre_rows, suf_enc, suf_rows, group = [], [], [], [], []
  for g, (p, rows) in enumerate(batch):
    pre_enc.append(_part(encodings[rows[0]], 0, p))
    pre_rows.append(rows[0])
    for r in rows:
      suf_enc.append(_part(encodings[r], p, None))
      suf_rows.append(r)
      group.append(g)
  real = np.asarray(suf_rows, np.int64)
  g_pad = max(_pow2(len(pre_enc)), _pow2(min_groups))  # min_groups: the mesh's data axis divides G
  pre_enc += [pre_enc[-1]] * (g_pad - len(pre_enc))
  pre_rows += [pre_rows[-1]] * (g_pad - len(pre_rows))
  extra = batch_size - len(suf_enc)
  suf_enc += [suf_enc[-1]] * extra
  suf_rows += [suf_rows[-1]] * extra
  group += [group[-1]] * extra
  # An empty prefix still needs one column: a masked pad token. Prefixes pad to twice `pad_multiple`: a prefix
  # runs once for all its rows, so its padding costs little, and half as many prefix lengths compile.
  longest = max(1, max(len(e["ids"]) for e in pre_enc))
  prefix = prompts.pad_left(pre_enc, pad_id, 2 * pad_multiple,
                            length=prompts.padded_length(longest, 2 * pad_multiple))
  suffix = prompts.pad_left(suf_enc, pad_id, pad_multiple)
  for out, rows in ((prefix, np.asarray(pre_rows)), (suffix, np.asarray(suf_rows))):
    out.update({f: np.asarray(fields[f])[rows] for f in _ROW_FIELDS if f in fields})
  suffix["group"] = np.asarray(group, np.int32)
  return prefix, suffix, real


def batches(encodings: Sequence[dict], fields: Mapping[str, np.ndarray], batch_size: int, pad_id: int,
            pad_multiple: int = 16, min_groups: int = 1) -> Iterator[tuple[dict, dict, np.ndarray]]:
  """Every row once, as (prefix batch, suffix batch, real rows) triples (see `collate`)."""
  for batch in plan(encodings, group_rows(fields), batch_size):
    yield collate(encodings, fields, batch, batch_size, pad_id, pad_multiple, min_groups)


def saved_fraction(encodings: Sequence[dict], fields: Mapping[str, np.ndarray]) -> float:
  """The share of prompt tokens that shared prefixes skip (0 when every group is a single row)."""
  total = sum(len(e["ids"]) for e in encodings)
  kept = 0
  for rows in _members(group_rows(fields)):
    p = prefix_length([encodings[r] for r in rows])
    kept += p + sum(len(encodings[r]["ids"]) - p for r in rows)
  return 1.0 - kept / max(total, 1)


def pack(encodings: Sequence[dict], pad_id: int, pad_multiple: int = 16, capacity: int = 128,
         rows_multiple: int = 2) -> tuple[dict, dict, np.ndarray]:
  """One group's rows as (prefix batch [1, Tp], packed suffixes, where) for `LLMRec.packed_answer_logits`.

  Suffixes are packed first-fit, longest first, into rows of `capacity` tokens (more when one suffix is longer),
  so a row holds several candidates and no suffix is padded to the longest: packed = input_ids / attention_mask /
  segment_ids [R, C] (segments numbered 1, 2, … in a row; 0 = padding at the row's end) and ends [R, M] (the
  column of each segment's last token, -1 = none), R a multiple of `rows_multiple`. where [N, 2]: each row's
  (packed row, segment index) so that scores[where[:, 0], where[:, 1]] are in row order. Only for text-only
  prompts: an ID slot after the prefix would need its own vector per segment.
  """
  p = prefix_length(encodings)
  for e in encodings:
    if (e["item_pos"] >= p).any() or (e["user_pos"] >= p).any():
      raise ValueError("pack: an ID slot lies after the shared prefix; use `batches` for such prompts")
  suffixes = [e["ids"][p:] for e in encodings]
  cap = max(capacity, prompts.padded_length(max(len(x) for x in suffixes), pad_multiple))
  rows: list[list[int]] = []  # candidate indices per packed row
  room: list[int] = []
  for i in sorted(range(len(suffixes)), key=lambda i: -len(suffixes[i])):
    r = next((r for r, free in enumerate(room) if free >= len(suffixes[i])), None)
    if r is None:
      rows.append([])
      room.append(cap)
      r = len(rows) - 1
    rows[r].append(i)
    room[r] -= len(suffixes[i])
  n_rows = -(-len(rows) // rows_multiple) * rows_multiple
  per_row = max(len(r) for r in rows)
  m = -(-per_row // 8) * 8  # segments per row, rounded so that few shapes compile
  ids = np.full((n_rows, cap), pad_id, np.int32)
  seg = np.zeros((n_rows, cap), np.int32)
  ends = np.full((n_rows, m), -1, np.int32)
  where = np.zeros((len(suffixes), 2), np.int64)
  for r, members in enumerate(rows):
    col = 0
    for k, i in enumerate(members):
      n = len(suffixes[i])
      ids[r, col:col + n], seg[r, col:col + n] = suffixes[i], k + 1
      ends[r, k], where[i] = col + n - 1, (r, k)
      col += n
  prefix = prompts.pad_left([_part(encodings[0], 0, p)], pad_id, 2 * pad_multiple,
                            length=prompts.padded_length(max(p, 1), 2 * pad_multiple))
  packed = dict(input_ids=ids, attention_mask=(seg > 0).astype(np.int32), segment_ids=seg, ends=ends)
  return prefix, packed, where
