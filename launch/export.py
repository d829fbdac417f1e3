"""Exports a finished LLM-recommender run's models.

  python launch/export.py --workdir=workdirs/collm_ml1m                 # LoRA adapters, PEFT format (adapter/)
  python launch/export.py --workdir=workdirs/collm_ml1m --format=hf     # merged transformers checkpoint (hf/)

--format=hf writes config.json, model.safetensors and the tokenizer's files (AutoModelForCausalLM.from_pretrained
loads them, peft not needed: LoRA is merged), plus for CoLLM runs collm_mapper.safetensors, collm_cf.safetensors and
collm.json. --output picks another folder. Errors print one line `error: ...` and exit with 2.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import flags  # noqa: E402

from launch import _cli  # noqa: E402


def main(argv: list[str]) -> None:
  fv = flags.FlagValues()
  workdir = flags.DEFINE_string("workdir", None, "workdir of a finished launch/train.py run", flag_values=fv)
  fmt = flags.DEFINE_string("format", "peft", "peft (adapters) or hf (merged transformers checkpoint)",
                            flag_values=fv)
  output = flags.DEFINE_string("output", None, "output folder (default <workdir>/adapter or <workdir>/hf)",
                               flag_values=fv)
  _cli.parse_main(argv, fv, workdir)
  from jaxrec.train.llm_export import export_run

  out = export_run(workdir.value, fmt.value, output.value)
  print(f"wrote {out}", flush=True)


if __name__ == "__main__":
  _cli.run(main)
