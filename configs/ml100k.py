"""python launch/train.py --config=configs/ml100k.py --workdir=/tmp/jaxrec-ml100k

README's main job, on the embedded defaults: ML-100K (from the PyPI wheel recbole==1.2.1) in CoLLM's protocol
(label rating >= 4, time-ordered 8:1:1), MF trained first into <workdir>/cf, then CoLLM-FaissRet's two stages (FECE,
then LoRA; 48 steps of 8 prompts each) on SmolLM2-135M (embedded GGUF, first 4 layers). ~20 min on 2 CPU cores shared
with other jobs. Gives, on 256-row samples: valid AUC 0.6101 / UAUC 0.6261 (MF alone on the same rows 0.5127 /
0.4539: 87% of them are cold, where MF is at chance), valid_small 0.6531 / 0.6682 (MF 0.5546 / 0.5803).
Arg: ':tiny' (random 2-layer LLM, for tests), ':collm_order'.
"""

from jaxrec.train.llm_config import llm_config


def get_config(arg=None):
  return llm_config("ml100k", arg, cf="mf", text_template="tallrec_movie", slot_template="collm_movie")
