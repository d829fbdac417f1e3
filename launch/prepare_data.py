"""Materializes (and caches) a dataset and prints a table per split.

  python launch/prepare_data.py --config=configs/data_ml1m_collm.py [--config.data.root=../shared/data]

Columns: rows, users, items, positive rate, warm share, mean history length and prompt tokens (mean / p95) of the
config's template with the default tokenizer (jaxrec.llm.tokenizer.load_default_tokenizer, or --tokenizer=PATH to a
tokenizer.json / GGUF / HF directory; --notokens skips them; at most --token_sample rows per split are tokenized,
a seeded sample). Errors print `error: <message>` and exit with 2.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from jaxrec import data as jdata
from jaxrec.data import prompts, stats
from jaxrec.errors import JaxrecError

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config with a `data` field", lock_config=True)
_TOKENIZER = flags.DEFINE_string("tokenizer", None, "tokenizer spec for token counts (default: the embedded one)")
_TOKENS = flags.DEFINE_bool("tokens", True, "count prompt tokens")
_TOKEN_SAMPLE = flags.DEFINE_integer("token_sample", 50000, "rows per split whose prompts are tokenized (seeded "
                                     "sample; 0 = all): ML-1M top-K has 800k train rows")


def _tokenizer(spec):
  from jaxrec.llm import tokenizer  # only the CLI needs the LLM side; jaxrec.data never imports it

  if spec and spec.endswith(".json"):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_file=spec)
  return tokenizer.load_tokenizer(spec) if spec else tokenizer.load_default_tokenizer()


def _token_lengths(ds, split, data_cfg, tok, sample: int) -> np.ndarray:
  rows = np.arange(len(split))
  if 0 < sample < len(rows):
    rows = np.sort(np.random.default_rng(0).choice(rows, sample, replace=False))
  texts = prompts.render(data_cfg.template, split, ds.item_text, rows, data_cfg.prompt_history,
                         data_cfg.quote_titles, data_cfg.empty_history_text)
  return np.array([len(e["ids"]) for e in prompts.tokenize(texts, tok, data_cfg.proj_token_num)])  # [rows]


def run(cfg, tokenizer_spec, count_tokens: bool, token_sample: int = 0) -> str:
  data_cfg = cfg.data
  t0 = time.time()
  ds = jdata.load_dataset(data_cfg)
  tok = _tokenizer(tokenizer_spec) if count_tokens else None
  table = {}
  for name, split in ds.splits.items():
    lengths = _token_lengths(ds, split, data_cfg, tok, token_sample) if tok is not None else None
    table[name] = stats.split_stats(split, lengths)
  where = ds.info.get("cache") or ds.info.get("source", "")
  head = (f"{ds.name}: {ds.n_users:,} users, {ds.n_items:,} items ({where}; {time.time() - t0:.1f} s)")
  return head + "\n" + stats.format_table(table)


def main(argv):
  del argv
  if _CONFIG.value is None:
    print("error: --config=configs/<experiment>.py is required", file=sys.stderr)
    sys.exit(2)
  try:
    print(run(_CONFIG.value, _TOKENIZER.value, _TOKENS.value, _TOKEN_SAMPLE.value))
  except JaxrecError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
