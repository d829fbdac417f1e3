"""The items' multi-scale text encodings read by the collaborative tower ('mscf', `jaxrec.cf.mscf`): every item's
text through a decoder once, mean-pooled at K layers, centred and RMS-normalised per scale.

`config.model.text` (CF configs with model.name = 'mscf'):
  workdir: ''            a finished multi-scale run (configs/ml1m_multiscale.py): its decoder with its trained
                         adapters (eqs. 3-4), its scale layers and item text; '' = the fields below, adapter-free
  llm, random_llm, dtype, keep_layers    the backbone (`jaxrec.llm.backbone`; llm None = SmolLM2-135M)
  num_scales: K          layer groups; layers: [] = the top of each group, or `hidden_states` indices
  max_tokens, with_genres, prefix        the item text (`jaxrec.multiscale.text`)
  batch_size             items per forward pass
Why centred and normalised: a decoder's pooled states share one dominant direction (`jaxrec.models.multiscale`), and
depths differ in magnitude; after this every scale is a zero-mean vector of RMS 1 over the catalogue.
Cached: the pass costs minutes (30 layers × 3,706 ML-1M items: 3-7 min on 2 cores) and every rebuild of a run needs
it (training, evaluate, compare, the index), so the result is kept in `<cache>/text_features/<key>.npy`, the key a
SHA-256 of everything it depends on: the text section, the item texts and genres, the pooling, and the bytes of the
decoder's weights and adapters actually used (a changed checkpoint or backbone misses the cache, never reads it),
and `_CACHE_VERSION` for the code.
"""

from __future__ import annotations

import hashlib
import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxrec import paths
from jaxrec.errors import JaxrecError
from jaxrec.llm import backbone
from jaxrec.models import multiscale as MS
from jaxrec.multiscale import config as msc, pooling as P, text as T
from jaxrec.tree import update_digest


_CACHE_VERSION = 1  # bump when the pooling, centring or normalisation below changes: old entries then miss


def text_config(**overrides) -> ml_collections.ConfigDict:
  """`config.model.text` with its defaults (all 30 of SmolLM2's layers, 3 scales: a one-off pass, ~1-2 min)."""
  from ml_collections.config_dict import placeholder

  cfg = ml_collections.ConfigDict({
      "workdir": "", "llm": placeholder(str), "random_llm": dict(backbone.RANDOM_LLM), "dtype": "float32",
      "keep_layers": -1, "num_scales": 3, "layers": [], "max_tokens": 24, "with_genres": True,
      "prefix": "A movie:", "batch_size": 64})
  cfg.update(overrides)
  return cfg


def _multiscale_model_config(text_cfg) -> ml_collections.ConfigDict:
  """The multi-scale model section whose decoder and item text the encodings come from (no centring: done here)."""
  return msc.model_config(
      llm=text_cfg.llm, random_llm=text_cfg.random_llm.to_dict(), dtype=text_cfg.dtype,
      keep_layers=int(text_cfg.keep_layers),
      scales=dict(num=int(text_cfg.num_scales), layers=list(text_cfg.layers)),
      item=dict(max_tokens=int(text_cfg.max_tokens), with_genres=bool(text_cfg.with_genres),
                prefix=text_cfg.prefix),
      center=False)


def _from_run(workdir: str, dataset):
  """(model, params, item tokens, adapters) of a finished multi-scale run, checked against `dataset`'s catalogue."""
  from jaxrec.train import loop, multiscale_data, multiscale_task, workdir as run_dir

  ms_config = run_dir.read_config(workdir)
  if ms_config.model.get("family") != "multiscale":
    raise JaxrecError(f"config.model.text.workdir: {workdir} is not a multi-scale run (family "
                      f"{ms_config.model.get('family')!r})")
  ms_data = multiscale_data.load_data(ms_config)
  if ms_data.n_items != dataset.n_items or list(ms_data.item_text) != list(dataset.item_text):
    raise JaxrecError(f"config.model.text.workdir: {workdir} was trained on a catalogue of {ms_data.n_items} "
                      f"items that differs from this dataset's {dataset.n_items}")
  model, init, table = multiscale_task.build_model(ms_config, ms_data)
  return model, loop.restore_params(ms_config, workdir, init), table, None


def item_scale_features(text_cfg, dataset, seed: int = 0) -> np.ndarray:
  """[n_items + 1, K, D] float32; row 0 (padding) zeros; rows 1.. centred and RMS-normalised per scale."""
  if not (isinstance(text_cfg.batch_size, int) and text_cfg.batch_size >= 1):  # read by both branches below
    raise JaxrecError(f"config.model.text.batch_size: expected an integer >= 1, got {text_cfg.batch_size!r}")
  if text_cfg.workdir:
    model, params, table, adapters = _from_run(str(text_cfg.workdir), dataset)
  else:
    model_cfg = _multiscale_model_config(text_cfg)
    model, params, tok = MS.build(model_cfg, dataset.n_items, seed=seed)
    table = T.build_item_tokens(tok, dataset.item_text, dataset.item_genres, bool(text_cfg.with_genres),
                                int(text_cfg.max_tokens), model_cfg.user.prefix, model_cfg.item.prefix)
    adapters = {}  # the frozen decoder θ0
  path = paths.cache_dir() / "text_features" / f"{_cache_key(text_cfg, dataset, table, params, adapters)}.npy"
  if path.is_file():
    feats = np.load(path, allow_pickle=False)
    if feats.shape[0] == dataset.n_items + 1 and feats.dtype == np.float32:
      return feats
  feats = _encode(model, params, table, adapters, dataset.n_items, int(text_cfg.batch_size))
  try:
    with paths.atomic_file(path) as f:
      np.save(f, feats, allow_pickle=False)
  except OSError:
    pass  # a read-only cache: recomputed next time
  return feats


def _cache_key(text_cfg, dataset, table, params, adapters) -> str:
  """SHA-256 of the inputs of `_encode`: the text section, the catalogue, the item tokens and the weights' bytes."""
  h = hashlib.sha256(f"v{_CACHE_VERSION}".encode())
  h.update(json.dumps(text_cfg.to_dict(), sort_keys=True, default=str).encode())
  h.update(json.dumps([list(map(str, dataset.item_text)), list(map(str, getattr(dataset, "item_genres", [])))]
                      ).encode())
  tokens = (table.ids, table.lens, np.asarray(table.bos + table.user_prefix + table.item_prefix + [table.pad_id]))
  update_digest(h, (tokens, params, adapters))
  return h.hexdigest()[:32]


def _encode(model, params, table, adapters, n_items: int, batch_size: int) -> np.ndarray:
  """[n_items + 1, K, D] float32 (see `item_scale_features`)."""
  encode = jax.jit(lambda p, ids, mask, seg: model.item_scales(p, ids, mask, seg, adapters))
  items = np.arange(1, n_items + 1)
  chunk = min(batch_size, len(items))
  padded = np.concatenate([items, np.ones((-len(items)) % chunk, np.int64)])  # one compiled shape
  out = []
  for lo in range(0, len(padded), chunk):
    enc = T.encode_items(table, padded[lo:lo + chunk])
    out.append(np.asarray(encode(params, enc["input_ids"], enc["attention_mask"], enc["segment"])))
  feats = np.concatenate(out)[:len(items)]  # [I, K, D]
  feats = feats - feats.mean(axis=0, keepdims=True)
  feats = np.asarray(P.rms_normalize(jnp.asarray(feats)))
  return np.concatenate([np.zeros((1,) + feats.shape[1:], np.float32), feats.astype(np.float32)])
