"""python launch/train.py --config=configs/ml1m.py --workdir=workdirs/collm_ml1m --config.data.root=../shared/data

CoLLM-FaissRet: MF (trained first into <workdir>/cf) → FECE mapper → the <UserID> / <TargetItemID> slots of the
CoLLM movie prompt → SmolLM2-135M (first 4 layers) with LoRA r=8 on q/v, CoLLM's head. Stages: FECE (48 steps of 8),
then LoRA (48 steps), lr 1e-3, validation AUC every 12 steps on a 256-row sample of valid_small. ~16 min on 2 busy
CPU cores. Gives (same 256-row samples; MF alone in brackets): valid_small AUC 0.7257 / UAUC 0.6937 (MF 0.6990 /
0.6811), valid 0.6294 / 0.5383 (MF 0.6139 / 0.4917). Arg: ':tiny' (random 2-layer LLM, for tests), ':collm_order'.
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("ml1m_collm", arg, cf="mf", text_template="tallrec_movie", slot_template="collm_movie")
