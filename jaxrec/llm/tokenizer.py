"""Tokenizers: from a HF checkpoint directory (its tokenizer.json), or rebuilt from GGUF metadata without torch.

A GGUF stores a byte-level BPE vocabulary as `tokenizer.ggml.tokens` / `merges` / `token_type`; we rebuild it with the
`tokenizers` package: the BPE model, the pre-tokenizer that llama.cpp's `tokenizer.ggml.pre` names (SmolLM2's
"smollm" splits digits one by one before the GPT-2 byte-level regex, as its original tokenizer.json does), the
control tokens as special tokens, and the chat template. Padding is on the left, as the decoder expects.
"""

from __future__ import annotations

import functools
import pathlib

from jaxrec.errors import JaxrecError
from jaxrec.llm import loading

_CONTROL = 3  # llama.cpp token_type for control tokens such as <|im_start|>

# llama.cpp pre-tokenizer names → extra splits applied before the byte-level GPT-2 regex.
_DIGIT_SPLITTERS = {"smollm", "gpt-2", "starcoder"}


def tokenizer_from_gguf(path: str | pathlib.Path):
  """The GGUF's tokenizer; rebuilt once per file and process (parsing 49k tokens + merges takes seconds)."""
  p = pathlib.Path(path).resolve()
  st = p.stat() if p.is_file() else None
  return _tokenizer_from_gguf(str(p), st.st_size if st else -1, st.st_mtime_ns if st else -1)


@functools.lru_cache(maxsize=4)
def _tokenizer_from_gguf(path: str, size: int, mtime: int):
  del size, mtime  # part of the cache key only: a changed file is parsed again
  from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
  from transformers import PreTrainedTokenizerFast

  meta = loading.gguf_metadata(loading.read_gguf(path))
  kind = meta.get("tokenizer.ggml.model")
  if kind != "gpt2":
    raise JaxrecError(f"{path}: tokenizer.ggml.model {kind!r} is not supported (expected byte-level BPE 'gpt2')")
  tokens = list(meta["tokenizer.ggml.tokens"])
  merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
  tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False))
  splits = [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
  pre = meta.get("tokenizer.ggml.pre", "gpt-2")
  if pre == "smollm":
    splits.insert(0, pre_tokenizers.Digits(individual_digits=True))
  tok.pre_tokenizer = pre_tokenizers.Sequence(splits)
  tok.decoder = decoders.ByteLevel()
  types = list(meta.get("tokenizer.ggml.token_type", []))
  tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                          for t, ty in zip(tokens, types) if ty == _CONTROL])

  def name(key):
    i = meta.get(f"tokenizer.ggml.{key}")
    return None if i is None else tokens[int(i)]

  return PreTrainedTokenizerFast(
      tokenizer_object=tok,
      bos_token=name("bos_token_id"),
      eos_token=name("eos_token_id"),
      unk_token=name("unknown_token_id"),
      pad_token=name("padding_token_id"),
      chat_template=meta.get("tokenizer.chat_template"),
      padding_side="left",
  )


def load_tokenizer(spec: str | None = None):
  """None → the embedded SmolLM2's; a `.gguf` path → rebuilt from its metadata; else a HF directory or hub id."""
  if not spec:
    from jaxrec.llm import assets

    spec = str(assets.default_gguf())
  if str(spec).endswith(".gguf"):
    return tokenizer_from_gguf(spec)
  from transformers import AutoTokenizer

  d = loading.resolve_checkpoint(spec)
  try:
    tok = AutoTokenizer.from_pretrained(str(d))
  except (OSError, ValueError) as e:
    raise JaxrecError(f"{d}: no usable tokenizer (expected tokenizer.json / tokenizer_config.json; {e})") from None
  tok.padding_side = "left"
  if tok.pad_token is None:
    tok.pad_token = tok.eos_token
  return tok


def load_default_tokenizer():
  return load_tokenizer(None)
