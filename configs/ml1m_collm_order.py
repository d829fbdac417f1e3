"""python launch/train.py --config=configs/ml1m_collm_order.py --workdir=workdirs/collm_order_ml1m --config.data.root=../shared/data

CoLLM-FaissRet (MF) on CoLLM's ML-1M split in CoLLM's released stage order: stage 1 tunes LoRA on the text-only
(TALLRec) prompt, stage 2 the FECE mapper with LoRA frozen on the prompt with <UserID> / <TargetItemID> slots.
Otherwise configs/ml1m.py (whose default order is the design card's: mapper first, then LoRA), so the two orders
compare directly. Arg: `tiny` (tests).
"""

from jaxrec.config_util import parse_arg, sibling_config


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, collm_order=True)  # `collm_order` is accepted and already on
  return sibling_config(__file__, "ml1m.py", f"collm_order,tiny={arg.tiny}")
