"""Zero-shot P("Yes") of a (LoRA-free) LLM on a dataset split: the embedded SmolLM2 on ML-100K by default.

  python launch/score.py --config=configs/data_ml100k.py --workdir=/tmp/jaxrec-score

Renders each row's TALLRec-style prompt, runs the decoder once per batch, reads only the "Yes"/"No" logits at the
last position, and reports AUC / UAUC of P(Yes) = softmax(yes, no)[yes] against the labels. Writes
`scores.csv` (row, user, item, label, p_yes) and `metrics.json` into the workdir, each atomically. Flags:
`--split` (default valid_small), `--rows` (first N rows, default 64), `--batch`, `--llm` (a HF directory, hub id or
.gguf; empty = the embedded SmolLM2).
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout
from launch import _cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file with a `data` section.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where scores.csv and metrics.json are written.")
_SPLIT = flags.DEFINE_string("split", "valid_small", "Split to score.")
_ROWS = flags.DEFINE_integer("rows", 64, "Score the first N rows of the split (-1 = all).")
_BATCH = flags.DEFINE_integer("batch", 16, "Prompts per forward pass.")
_LLM = flags.DEFINE_string("llm", "", "HF checkpoint dir / hub id / .gguf; empty = embedded SmolLM2-135M-Instruct.")


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp
  import numpy as np

  from jaxrec import metrics, paths
  from jaxrec.data import load_dataset, prompts
  from jaxrec.errors import JaxrecError
  from jaxrec.llm import loading, tokenizer
  from jaxrec.llm.model import Decoder

  config = _cli.config_value(_CONFIG)
  if not _WORKDIR.value:
    _cli.fail("--workdir is required")
  try:
    ds = load_dataset(config.data)
    split = ds[_SPLIT.value]
    n = len(split) if _ROWS.value < 0 else min(_ROWS.value, len(split))
    tok = tokenizer.load_tokenizer(_LLM.value or None)
    cfg, params = loading.load_pretrained(_LLM.value or None)
  except JaxrecError as e:
    _cli.fail(str(e))
  template = config.data.template.replace("<UserID>", "").replace("<TargetItemID>", "")  # text-only
  yes_no = jnp.asarray([tok("Yes", add_special_tokens=False)["input_ids"][0],
                        tok("No", add_special_tokens=False)["input_ids"][0]])
  model = Decoder(cfg)

  @jax.jit
  def p_yes(params, ids, mask):
    last = jnp.full((ids.shape[0], 1), ids.shape[1] - 1)  # left padding: the prompt ends in the last column
    logits = model.apply({"params": params}, ids, attention_mask=mask, logit_positions=last,
                         logit_token_ids=yes_no)["logits"][:, 0]  # [B, 2]
    return jax.nn.softmax(logits, axis=-1)[:, 0]

  scores, t0 = [], time.time()
  for start in range(0, n, _BATCH.value):
    rows = np.arange(start, min(start + _BATCH.value, n))
    enc = prompts.encode(template, split, ds.item_text, rows, tok, prompt_history=config.data.prompt_history,
                         quote_titles=config.data.quote_titles, empty_history_text=config.data.empty_history_text)
    scores.append(np.asarray(p_yes(params, jnp.asarray(enc["input_ids"]), jnp.asarray(enc["attention_mask"]))))
    print(f"\rscored {rows[-1] + 1}/{n} rows ({(rows[-1] + 1) / (time.time() - t0):.1f} rows/s)", end="",
          file=sys.stderr)
  print(file=sys.stderr)
  s = np.concatenate(scores)
  labels, users = split.label[:n], split.user[:n]
  u = metrics.uauc(users, labels, s)
  result = {"dataset": ds.name, "split": _SPLIT.value, "rows": int(n), "auc": metrics.auc(labels, s),
            "uauc": u.value, "uauc_users": u.n_users, "uauc_skipped": u.n_skipped, "mean_p_yes": float(s.mean())}
  out = pathlib.Path(_WORKDIR.value)
  with paths.atomic_file(out / "scores.csv", "w") as f:
    f.write("row,user,item,label,p_yes\n")
    for i in range(n):
      f.write(f"{i},{users[i]},{split.item[i]},{int(labels[i])},{s[i]:.6f}\n")
  with paths.atomic_file(out / "metrics.json", "w") as f:
    json.dump(result, f, indent=2)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  app.run(main, flags_parser=_cli.parse_flags)
