"""python launch/build_index.py --workdir=W --config=configs/index.py:hnsw --config.hnsw.ef_search=256

The index section (jaxrec.index.config): arg 'flat' (default, exact inner product), 'ivf' or 'hnsw'. Search-time
knobs (ivf.nprobe, hnsw.ef_search, retrieve.*) can also be changed later with launch/recommend.py's flags.
"""

from jaxrec.index.config import KINDS, index_config
from jaxrec.errors import JaxrecError


def get_config(arg=None):
  kind = arg or "flat"
  if kind not in KINDS:
    raise JaxrecError(f"config arg {arg!r}: expected one of {KINDS}")
  return index_config(kind)
