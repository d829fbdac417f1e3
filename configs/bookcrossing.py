"""python launch/train.py --config=configs/bookcrossing.py --workdir=workdirs/collm_bx --config.data.root=../shared/data

CoLLM-FaissRet on the BookCrossing pool (TALLRec's valid.json: a seeded 64-shot train set, 500 validation records).
Every BookCrossing user is new, so the CF side is a history encoder: SASRec, trained first on the pool outside the
validation records into <workdir>/cf, encodes each user's history; the FECE mapper writes it and the target book's
vector into the <UserID> / <TargetItemID> slots of the Alpaca-style book prompt; SmolLM2-135M (first 4 layers), LoRA
r=8 on q/v. Stages: FECE then LoRA, 3 epochs of the 64 shots (24 steps of 8) each. ~11 min on 2 busy CPU cores.
Gives valid (256 of the 500 rows) AUC 0.5505 (best during training 0.5533); SASRec alone on the same rows 0.5528,
TALLRec 0.4877. UAUC is not meaningful: the data has no user ids. Arg: ':tiny', ':collm_order'.
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("bookcrossing", arg, cf="sasrec", text_template="tallrec_book", slot_template="collm_bookcrossing")
