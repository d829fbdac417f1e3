"""python launch/train.py --config=configs/ml1m_collm_order.py --workdir=workdirs/collm_order_ml1m --config.data.root=../shared/data

CoLLM-FaissRet (MF) on CoLLM's ML-1M split in CoLLM's released stage order: stage 1 tunes LoRA on the text-only
(TALLRec) prompt, stage 2 tunes the FECE mapper with LoRA frozen on the prompt with <UserID> / <TargetItemID>
slots. Same budget and data as configs/ml1m.py (whose default order is the design card's: mapper first, then LoRA),
so the two orders compare directly. Not yet run on the real split; `:tiny` is exercised by the tests.
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  arg = ",".join(t for t in (arg, "collm_order") if t)
  return llm_config("ml1m_collm", arg, cf="mf", text_template="tallrec_movie", slot_template="collm_movie")
