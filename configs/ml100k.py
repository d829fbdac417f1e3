"""python launch/train.py --config=configs/ml100k.py --workdir=/tmp/jaxrec-ml100k

README's main job, on the embedded defaults: CoLLM-FaissRet (configs/ml1m.py's recipe: budget, model, stages) on
ML-100K (from the PyPI wheel recbole==1.2.1) in CoLLM's protocol (label rating >= 4, time-ordered 8:1:1), its MF
trained first into <workdir>/cf, SmolLM2-135M (embedded GGUF, first 4 layers). ~10 min on 2 CPU cores (final figures
on the whole valid splits: ~5 of them). Args: `tiny` (random 2-layer LLM: tests), `collm_order`, `long`, `paper`
(configs/ml1m.py's). Measured: benchmarks/results/configs/results.md.
"""

from jaxrec.config_util import parse_arg, sibling_config
from jaxrec.train import llm_config


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, collm_order=False, long=False, paper=False)
  config = sibling_config(__file__, "ml1m.py", f"collm_order={arg.collm_order},long={arg.long},paper={arg.paper}")
  llm_config.use_data(config, "ml100k")  # movies too: ml1m.py's templates fit
  config.cf_train = sibling_config(__file__, "baselines/mf.py", "ml100k")
  return llm_config.tiny(config) if arg.tiny else config
