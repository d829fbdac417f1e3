"""python launch/train.py --config=configs/tallrec_bookcrossing.py --workdir=workdirs/tallrec_bx --config.data.root=../shared/data

TALLRec on the BookCrossing pool (TALLRec's valid.json: a seeded 64-shot train set, 500 validation records): the
Alpaca-style book prompt, LoRA r=8 on q/v of SmolLM2-135M (first 4 layers), one stage of 48 steps of 8 prompts.
~9 min on 2 busy CPU cores. Gives valid (256 of the 500 rows) AUC 0.4877: chance at this budget (SASRec on the same
rows: 0.5528). UAUC is not meaningful here: TALLRec's data has no user ids. Arg: ':tiny' for tests.
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("bookcrossing", arg, cf="none", text_template="tallrec_book", slot_template="collm_bookcrossing")
