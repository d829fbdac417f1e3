"""Eq. 1's input X: a user's history as text, tokenized with a per-token segment id (numpy, outside jit).

  X = <bos> user_prefix " Title (Genre, Genre)," " Title (…)," …      oldest first, most recent last

Each item's text (title, with its genres where the dataset has them) is tokenized once into a table
(`ItemTokens`), cut to `max_item_tokens`, so building a batch is concatenation. Rows are LEFT-padded to a fixed
length (the decoder counts positions over real tokens), and every token gets a segment id: the rank of its item
counted from the most recent (0 = last item), -1 for <bos>, the prefix and padding. `jaxrec.multiscale.pooling`
windows read these ids. Items are encoded the same way as a history of one item behind `item_prefix`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class ItemTokens:
  """Token ids of every item's text: `ids` [I + 1, M] right-padded, `lens` [I + 1] (row 0, padding, is empty)."""

  ids: np.ndarray
  lens: np.ndarray
  bos: list[int]
  user_prefix: list[int]
  item_prefix: list[int]
  pad_id: int

  def user_length(self, max_history: int) -> int:
    """A fixed row length that fits any history of `max_history` items (so one compiled shape serves all)."""
    return len(self.bos) + len(self.user_prefix) + max_history * self.ids.shape[1]

  @property
  def item_length(self) -> int:
    return len(self.bos) + len(self.item_prefix) + self.ids.shape[1]


def item_texts(item_text: Sequence[str], item_genres: Sequence[str] | None, with_genres: bool) -> list[str]:
  """' Title (Genres),' per item id (index 0 = '')."""
  out = [""]
  for i in range(1, len(item_text)):
    title = str(item_text[i]).strip()
    g = str(item_genres[i]).strip() if with_genres and item_genres is not None and i < len(item_genres) else ""
    out.append(f" {title} ({g})," if g else f" {title},")
  return out


def build_item_tokens(tok: Any, item_text: Sequence[str], item_genres: Sequence[str] | None = None,
                      with_genres: bool = True, max_item_tokens: int = 16, user_prefix: str = "",
                      item_prefix: str = "") -> ItemTokens:
  texts = item_texts(item_text, item_genres, with_genres)
  enc = tok(texts[1:], add_special_tokens=False)["input_ids"] if len(texts) > 1 else []
  ids = np.zeros((len(texts), max_item_tokens), np.int32)  # [I + 1, M]
  lens = np.zeros(len(texts), np.int32)
  for i, e in enumerate(enc, start=1):
    e = e[:max_item_tokens]
    ids[i, :len(e)], lens[i] = e, len(e)
  bos = [int(tok.bos_token_id)] if getattr(tok, "bos_token_id", None) is not None else []
  pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
  encode = lambda s: list(tok(s, add_special_tokens=False)["input_ids"]) if s else []
  return ItemTokens(ids, lens, bos, encode(user_prefix), encode(item_prefix), int(pad))


def encode_histories(table: ItemTokens, histories: np.ndarray, length: int, prefix: Sequence[int] | None = None
                     ) -> dict[str, np.ndarray]:
  """histories [B, H] item ids, left-padded with 0, most recent last → input_ids / attention_mask / segment [B, T].

  Rows are left-padded to `length`; a row too long keeps its most recent tokens (never the prefix).
  """
  prefix = list(table.bos) + list(table.user_prefix if prefix is None else prefix)
  b, h = histories.shape
  ids = np.full((b, length), table.pad_id, np.int32)  # [B, T]
  mask = np.zeros((b, length), np.int32)  # [B, T]
  seg = np.full((b, length), -1, np.int32)  # [B, T]
  for r in range(b):
    items = histories[r][histories[r] > 0]
    pieces = [table.ids[i, :table.lens[i]] for i in items]
    ranks = [np.full(len(p), len(items) - 1 - n, np.int32) for n, p in enumerate(pieces)]
    body = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
    body_seg = np.concatenate(ranks) if ranks else np.zeros(0, np.int32)
    room = length - len(prefix)
    body, body_seg = body[len(body) - min(room, len(body)):], body_seg[len(body_seg) - min(room, len(body_seg)):]
    row = np.concatenate([np.asarray(prefix, np.int32), body])
    ids[r, length - len(row):] = row
    mask[r, length - len(row):] = 1
    if len(body):
      seg[r, length - len(body):] = body_seg
  return {"input_ids": ids, "attention_mask": mask, "segment": seg}


def encode_items(table: ItemTokens, items: np.ndarray) -> dict[str, np.ndarray]:
  """items [N] ids → input_ids / attention_mask / segment [N, T_item] (an item = a history of one)."""
  return encode_histories(table, np.asarray(items, np.int64)[:, None], table.item_length, table.item_prefix)
