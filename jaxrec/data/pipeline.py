"""grain pipelines: seeded, deterministic batches of numpy arrays, sharded per process.

Both pipelines are `grain.MapDataset`s over a precomputed batch plan (lists of row indices), mapped to a collate
function, so that the same (seed, epoch) gives the same batches on every run and every host. Iterate them directly
(no worker processes: grain's multiprocess prefetch needs parsed absl flags) or call `.to_iter_dataset()`.

Multi-host: every process computes the same global plan and takes its contiguous share of each global batch
(`batch_size / process_count` rows, process `p` the p-th share); the caller assembles the global array on the mesh's
`data` axis (jaxrec.sharding). Process index / count default to jax's when jax is already imported, else 0 / 1.

Length bucketing (`bucket=True`, prompts only): the shuffled rows are cut into windows of `bucket_batches` batches,
sorted by prompt length inside a window and cut into batches whose order is then shuffled; each batch is padded to
its own longest prompt rounded up to `pad_multiple`, so a batch does not pay for the longest prompt overall.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import grain
import numpy as np

from jaxrec.data import prompts, schema

_FIELDS = ("user", "item", "label", "timestamp", "history", "history_len", "history_label", "warm")


def process_info(process_index: int | None = None, process_count: int | None = None) -> tuple[int, int]:
  if process_index is None or process_count is None:
    jax = sys.modules.get("jax")  # never import jax just for this: the data layer must work without it
    index, count = (jax.process_index(), jax.process_count()) if jax is not None else (0, 1)
    process_index = index if process_index is None else process_index
    process_count = count if process_count is None else process_count
  return int(process_index), int(process_count)


def plan_batches(n: int, batch_size: int, seed: int, *, epoch: int = 0, shuffle: bool = True,
                 drop_remainder: bool = False, lengths: np.ndarray | None = None, bucket_batches: int = 32,
                 process_index: int | None = None, process_count: int | None = None) -> list[np.ndarray]:
  """Row indices of each batch for this process; deterministic in (seed, epoch)."""
  p, count = process_info(process_index, process_count)
  if batch_size % count:
    raise ValueError(f"batch_size {batch_size} is not divisible by the process count {count}")
  rng = np.random.default_rng([seed, epoch])
  order = rng.permutation(n) if shuffle else np.arange(n)
  if lengths is not None:
    window = batch_size * max(1, bucket_batches)
    order = np.concatenate([w[np.argsort(lengths[w], kind="stable")]
                            for w in np.split(order, range(window, n, window))]) if n else order
  batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
  if drop_remainder and batches and len(batches[-1]) < batch_size:
    batches.pop()
  if lengths is not None and shuffle:
    batches = [batches[k] for k in rng.permutation(len(batches))]
  share = batch_size // count
  return [b[p * share:(p + 1) * share] for b in batches if len(b[p * share:(p + 1) * share])]


def collate_rows(split: schema.Split, rows: np.ndarray) -> dict[str, np.ndarray]:
  """The Split's arrays at `rows`, plus `row` (indices into the split)."""
  out = {f: getattr(split, f)[rows] for f in _FIELDS}
  out["row"] = np.asarray(rows, np.int64)
  return out


def rec_batches(split: schema.Split, batch_size: int, seed: int, *, epoch: int = 0, shuffle: bool = True,
                drop_remainder: bool = False, process_index: int | None = None,
                process_count: int | None = None) -> grain.MapDataset:
  """Batches of the Split's arrays (for CF models): dicts of user [B], item [B], label [B], history [B, H], ..."""
  plan = plan_batches(len(split), batch_size, seed, epoch=epoch, shuffle=shuffle, drop_remainder=drop_remainder,
                      process_index=process_index, process_count=process_count)
  return grain.MapDataset.source(plan).map(lambda rows: collate_rows(split, rows))


class PromptTable:
  """Every row of one split rendered and tokenized once (unpadded), ready to be batched."""

  def __init__(self, ds: schema.Dataset, split_name: str, data_cfg, tok: Any, template: str | None = None):
    self.split = ds[split_name]
    texts = prompts.render(template if template is not None else data_cfg.template, self.split, ds.item_text,
                           range(len(self.split)), data_cfg.prompt_history, data_cfg.quote_titles,
                           data_cfg.empty_history_text)
    self.encodings = prompts.tokenize(texts, tok, data_cfg.proj_token_num)
    self.lengths = np.fromiter((len(e["ids"]) for e in self.encodings), np.int64, len(self.encodings))  # [N]
    self.pad_id = prompts.pad_token_id(tok)
    self.pad_multiple = data_cfg.pad_multiple

  def __len__(self) -> int:
    return len(self.encodings)

  def collate(self, rows: Sequence[int]) -> dict[str, np.ndarray]:
    """input_ids / attention_mask [B, T], user_slot_pos / item_slot_pos [B, n] and the Split's fields."""
    rows = np.asarray(rows, np.int64)
    out = prompts.pad_left([self.encodings[r] for r in rows], self.pad_id, self.pad_multiple)
    out.update(collate_rows(self.split, rows))
    return out


def prompt_batches(ds: schema.Dataset, split_name: str, data_cfg, tok: Any, batch_size: int, seed: int, *,
                   epoch: int = 0, shuffle: bool = True, bucket: bool = True, drop_remainder: bool = False,
                   template: str | None = None, table: PromptTable | None = None, process_index: int | None = None,
                   process_count: int | None = None) -> grain.MapDataset:
  """Tokenized prompt batches of one split (pass `table` to reuse one tokenization across epochs)."""
  table = table or PromptTable(ds, split_name, data_cfg, tok, template)
  plan = plan_batches(len(table), batch_size, seed, epoch=epoch, shuffle=shuffle, drop_remainder=drop_remainder,
                      lengths=table.lengths if bucket else None, process_index=process_index,
                      process_count=process_count)
  return grain.MapDataset.source(plan).map(table.collate)
