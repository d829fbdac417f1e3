"""Prompt text from templates, and its tokenization with ID slots.

Templates are plain strings (config data) with these markers:
  <ItemTitleList>          liked history items (all history where a dataset keeps positives only): each text
                           quoted when the dataset's `quote_titles` is set, joined by ", ", the last
                           `prompt_history` history entries; `empty_history_text` when there are none.
  <DislikedItemTitleList>  disliked history items (BookCrossing / TALLRec "User Unpreference"), same rules.
  <TargetItemTitle>        the target item's text (quoted like the list).
  <UserID>, <TargetItemID> ID slots: kept in the rendered text, replaced at tokenization by `proj_token_num`
                           placeholder tokens each, whose embeddings a CoLLM model overwrites.

CoLLM (github zyang1580/CoLLM, prompts/*.txt and minigpt4rec_v2.py) prepends the BOS token, tokenizes without
special tokens and marks slots with the tokenizer's unk token. Here each text segment between slots is tokenized
separately and the placeholders are inserted as ids, so a slot is found by position, never by searching for an id
that a title could also produce. CoLLM joins multi-token slots with "."; we put the placeholders side by side.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

EMPTY_HISTORY_TEXT = "unkow"  # CoLLM's convert_title_list_v2 fallback, spelled as in CoLLM

# CoLLM's prompts/*.txt hold a literal backslash-n (two characters) before "#Answer:", which its code never
# unescapes, so its LLM saw those two characters; they are kept as they are for fidelity.
_COLLM_MOVIE = (
    "#Question: A user has given high ratings to the following movies: <ItemTitleList>. Additionally, we have "
    "information about the user's preferences encoded in the feature <UserID>. Using all available information, "
    "make a prediction about whether the user would enjoy the movie titled <TargetItemTitle> with the feature "
    "<TargetItemID>? Answer with \"Yes\" or \"No\". \\n#Answer:")
_TALLREC_MOVIE = (
    "#Question: A user has given high ratings to the following movies: <ItemTitleList>. Leverage the information "
    "to predict whether the user would enjoy the movie titled <TargetItemTitle>? Answer with \"Yes\" or \"No\". "
    "\\n#Answer:")
_ALPACA = ("Below is an instruction that describes a task, paired with an input that provides further context. "
           "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
           "### Input:\n{input}\n\n### Response:\n")
# TALLRec data/book/*.json: the "input" field, exactly (its target is quoted around "<title>" written by <author>).
TALLREC_BOOK_INPUT = ("User Preference: <ItemTitleList>\nUser Unpreference: <DislikedItemTitleList>\n"
                      "Whether the user will like the target book \"<TargetItemTitle>\"?")
TALLREC_BOOK_INSTRUCTION = ("Given the user's preference and unpreference, identify whether the user will like the "
                            "target book by answering \"Yes.\" or \"No.\".")

# SmolLM2-Instruct's (and Qwen2's) ChatML turn, with its default system line, for chat-tuned backbones: the user turn
# holds the task, the assistant turn is left open so the next token is the answer.
_CHATML = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
           "<|im_start|>user\n{instruction}\n\n{input}<|im_end|>\n<|im_start|>assistant\n")

TEMPLATES = {
    "collm_movie": _COLLM_MOVIE,
    "tallrec_movie": _TALLREC_MOVIE,
    "collm_book": _COLLM_MOVIE.replace("movies", "books").replace("the movie", "the book"),
    "tallrec_book_collm": _TALLREC_MOVIE.replace("movies", "books").replace("the movie", "the book"),
    "tallrec_book": _ALPACA.format(instruction=TALLREC_BOOK_INSTRUCTION, input=TALLREC_BOOK_INPUT),
    "tallrec_book_chat": _CHATML.format(instruction=TALLREC_BOOK_INSTRUCTION, input=TALLREC_BOOK_INPUT),
    "collm_bookcrossing": _ALPACA.format(
        instruction=TALLREC_BOOK_INSTRUCTION,
        input=TALLREC_BOOK_INPUT.replace("\nWhether", "\nThe user's preferences are encoded in the feature "
                                         "<UserID>.\nWhether").replace("?", " with the feature <TargetItemID>?")),
}

SLOTS = ("<UserID>", "<TargetItemID>")
_SLOT_RE = re.compile("(<UserID>|<TargetItemID>)")


def _join(texts: Sequence[str], quote: bool, empty: str) -> str:
  texts = [t for t in texts if t]
  if not texts:
    return empty
  return ", ".join(f'"{t}"' if quote else t for t in texts)


def render(template: str, split, item_text: Sequence[str], rows: Sequence[int] | np.ndarray,
           prompt_history: int = 10, quote_titles: bool = True,
           empty_history_text: str = EMPTY_HISTORY_TEXT) -> list[str]:
  """Prompt text of each row of `split` (a `schema.Split`); ID slots stay as markers."""
  out = []
  for r in rows:
    r = int(r)
    recent = split.history_ids(r, last=prompt_history)
    n = len(recent)
    labels = split.history_label[r, split.history.shape[1] - n:] if n else []
    liked = [item_text[i] for i, l in zip(recent, labels) if l == 1]
    disliked = [item_text[i] for i, l in zip(recent, labels) if l == 0]
    target = item_text[int(split.item[r])].strip(" ")
    text = template.replace("<ItemTitleList>", _join(liked, quote_titles, empty_history_text))
    text = text.replace("<DislikedItemTitleList>", _join(disliked, quote_titles, empty_history_text))
    out.append(text.replace("<TargetItemTitle>", f'"{target}"' if quote_titles else target))
  return out


def placeholder_id(tok: Any) -> int:
  """The id written into ID slots: unk when the tokenizer has one, else pad."""
  pid = tok.unk_token_id if getattr(tok, "unk_token_id", None) is not None else tok.pad_token_id
  if pid is None:
    raise ValueError("tokenizer has neither unk_token_id nor pad_token_id; one is needed for ID slots")
  return int(pid)


def tokenize(texts: Sequence[str], tok: Any, proj_token_num: int = 1, add_bos: bool = True) -> list[dict]:
  """Unpadded encodings: per text {'ids': int32 [L], 'user_pos': int32 [n], 'item_pos': int32 [n]} (n = slots).

  Positions are offsets into 'ids'; -1 when the text has no such slot.
  """
  pieces = [_SLOT_RE.split(t) for t in texts]
  # Text between slots; each distinct segment is tokenized once (template tails repeat on every row).
  unique = list(dict.fromkeys(p for ps in pieces for p in ps[0::2] if p))
  table = dict(zip(unique, tok(unique, add_special_tokens=False)["input_ids"] if unique else []))
  bos = [int(tok.bos_token_id)] if add_bos and getattr(tok, "bos_token_id", None) is not None else []
  ph = placeholder_id(tok) if any(len(ps) > 1 for ps in pieces) else -1
  out = []
  for ps in pieces:
    ids = list(bos)
    pos = {s: np.full(proj_token_num, -1, np.int32) for s in SLOTS}
    for k, p in enumerate(ps):
      if k % 2 == 0:
        if p:
          ids.extend(table[p])
      else:
        pos[p] = np.arange(len(ids), len(ids) + proj_token_num, dtype=np.int32)
        ids.extend([ph] * proj_token_num)
    out.append(dict(ids=np.asarray(ids, np.int32), user_pos=pos["<UserID>"], item_pos=pos["<TargetItemID>"]))
  return out


def padded_length(max_len: int, pad_multiple: int) -> int:
  """`max_len` rounded up to a multiple of `pad_multiple` (so a few batch shapes serve all batches)."""
  m = max(1, int(pad_multiple))
  return -(-max_len // m) * m


def pad_left(encodings: Sequence[dict], pad_id: int, pad_multiple: int = 16,
             length: int | None = None) -> dict[str, np.ndarray]:
  """LEFT-pads encodings to the batch's longest (rounded up to `pad_multiple`) or to `length`.

  Returns input_ids [B, T] int32, attention_mask [B, T] int32, user_slot_pos / item_slot_pos [B, n] int32 (positions
  in the padded row; -1 where the template has no such slot).
  """
  longest = max(len(e["ids"]) for e in encodings)
  t = length if length is not None else padded_length(longest, pad_multiple)
  if t < longest:
    raise ValueError(f"pad length {t} is shorter than the longest prompt ({longest} tokens)")
  b = len(encodings)
  ids = np.full((b, t), pad_id, np.int32)  # [B, T]
  mask = np.zeros((b, t), np.int32)  # [B, T]
  n = len(encodings[0]["user_pos"])
  upos = np.full((b, n), -1, np.int32)  # [B, n]
  ipos = np.full((b, n), -1, np.int32)  # [B, n]
  for r, e in enumerate(encodings):
    shift = t - len(e["ids"])
    ids[r, shift:] = e["ids"]
    mask[r, shift:] = 1
    upos[r] = np.where(e["user_pos"] >= 0, e["user_pos"] + shift, -1)
    ipos[r] = np.where(e["item_pos"] >= 0, e["item_pos"] + shift, -1)
  return dict(input_ids=ids, attention_mask=mask, user_slot_pos=upos, item_slot_pos=ipos)


def pad_token_id(tok: Any) -> int:
  pid = getattr(tok, "pad_token_id", None)
  if pid is None:
    pid = getattr(tok, "eos_token_id", None)
  return int(pid) if pid is not None else 0


def encode(template: str, split, item_text: Sequence[str], rows, tok: Any, *, prompt_history: int = 10,
           quote_titles: bool = True, empty_history_text: str = EMPTY_HISTORY_TEXT, proj_token_num: int = 1,
           pad_multiple: int = 16) -> dict[str, np.ndarray]:
  """Render + tokenize + left-pad rows of `split` in one call (see `render`, `tokenize`, `pad_left`)."""
  texts = render(template, split, item_text, rows, prompt_history, quote_titles, empty_history_text)
  return pad_left(tokenize(texts, tok, proj_token_num), pad_token_id(tok), pad_multiple)
