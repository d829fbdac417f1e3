"""Zero-shot P("Yes") of a (LoRA-free) LLM on a dataset split: the embedded SmolLM2 on ML-100K by default.

  python launch/score.py --config=configs/data_ml100k.py --workdir=/tmp/jaxrec-score

Each row becomes zero-shot TALLRec's prompt: the dataset's own template when it has no ID slots (BookCrossing),
else the text-only TALLRec prompt of its domain (never a CoLLM template with its slots cut out). The scorer is the
one `launch/recommend.py --llm` re-ranks with (`jaxrec.index.llm_scorer`): P(Yes) = softmax over the logits of the
answer tokens as they follow the prompt's tail (`models.llmrec.answer_token_ids`: " Yes" after "Answer:", "Yes"
after a newline), at the last position. Reports AUC / UAUC against the labels and writes `scores.csv` (row, user,
item, label, p_yes) and `metrics.json` into the workdir, each atomically. Flags: `--split` (default valid_small),
`--rows` (first N rows, default 64; -1 = all), `--batch`, `--llm` ('smollm2' = the embedded SmolLM2, 'random', a HF
directory, hub id or .gguf). Errors print one line `error: ...` and exit with 2.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from launch import _cli  # noqa: E402


def main(argv: list[str]) -> dict:
  fv = flags.FlagValues()
  config_flag = config_flags.DEFINE_config_file("config", None, "config file with a `data` section", flag_values=fv,
                                                sys_argv=argv)
  workdir = flags.DEFINE_string("workdir", None, "where scores.csv and metrics.json are written", flag_values=fv)
  split_name = flags.DEFINE_string("split", "valid_small", "split to score", flag_values=fv)
  rows_flag = flags.DEFINE_integer("rows", 64, "score the first N rows of the split (-1 = all)", flag_values=fv)
  batch = flags.DEFINE_integer("batch", 16, "prompts per forward pass", flag_values=fv)
  template_flag = flags.DEFINE_string("template", None, "a prompt template name (jaxrec.data.prompts.TEMPLATES, e.g. "
                                      "tallrec_book_chat); default: the dataset's text-only TALLRec prompt",
                                      flag_values=fv)
  llm = flags.DEFINE_string("llm", "smollm2", "'smollm2' (embedded SmolLM2-135M-Instruct), 'random', a HF checkpoint "
                            "dir, hub id or .gguf", flag_values=fv)
  config = _cli.parse_main(argv, fv, workdir, config_flag)

  import numpy as np

  from jaxrec import evaluate as ev, paths
  from jaxrec.data import load_dataset
  from jaxrec.errors import JaxrecError
  from jaxrec.index.llm_scorer import make_llm_scorer, text_template

  from jaxrec.data.prompts import TEMPLATES

  if template_flag.value is not None and template_flag.value not in TEMPLATES:
    raise JaxrecError(f"--template={template_flag.value}: expected one of {sorted(TEMPLATES)}")
  ds = load_dataset(config.data)
  if split_name.value not in ds.splits:
    raise JaxrecError(f"--split={split_name.value}: not a split of {ds.name} ({', '.join(ds.splits)})")
  split = ds[split_name.value]
  n = len(split) if rows_flag.value < 0 else min(rows_flag.value, len(split))
  scorer = make_llm_scorer(llm.value or "smollm2", ds.item_text, config.data, ds.name,
                           template=template_flag.value or text_template(config.data, ds.name))
  rows = np.arange(n)
  s = scorer({"user": split.user[rows], "item": split.item[rows], "history": split.history[rows],
              "history_label": split.history_label[rows]}, batch_size=batch.value, progress=True).astype(np.float64)
  print(f"scored {n} rows ({scorer.scorer.rows_per_s:.1f} rows/s)", file=sys.stderr)
  labels, users = split.label[:n], split.user[:n]
  m = ev.ctr_metrics(users, labels, s)
  result = {"dataset": ds.name, "split": split_name.value, "rows": int(n), "template": scorer.template,
            "answer_token_ids": [int(i) for i in scorer.model.answer_ids], "auc": m["auc"], "uauc": m["uauc"],
            "uauc_users": m["uauc_users"], "uauc_skipped": m["uauc_skipped"], "mean_p_yes": float(s.mean())}
  out = pathlib.Path(workdir.value)
  with paths.atomic_file(out / "scores.csv", "w") as f:
    f.write("row,user,item,label,p_yes\n")
    for i in range(n):
      f.write(f"{i},{users[i]},{split.item[i]},{int(labels[i])},{s[i]:.6f}\n")
  ev.write_metrics(out / "metrics.json", result)
  print(json.dumps({k: v for k, v in result.items() if k != "template"}, indent=2))
  return result


if __name__ == "__main__":
  _cli.run(main)
