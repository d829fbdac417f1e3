"""Backbone shapes without weights, for planning (`launch/plan.py`): a shape-only config.json (configs/shapes/ holds
those of the papers' backbones) or the shape of a `config.model.llm` value read from its header alone."""

from __future__ import annotations

import json
import pathlib

from jaxrec.errors import JaxrecError
from jaxrec.llm import config as config_lib, loading
from jaxrec.llm.config import LlamaConfig


def from_json(path) -> LlamaConfig:
  """The LlamaConfig of a (shape-only) Hugging Face config.json."""
  path = pathlib.Path(path)
  try:
    d = json.loads(path.read_text())
  except (OSError, ValueError) as e:
    raise JaxrecError(f"{path}: not a readable config.json ({e})") from None
  return config_lib.from_hf_dict(d, str(path))


def of_llm(spec: str | None) -> LlamaConfig:
  """The shape of `config.model.llm`: None (the embedded SmolLM2) or a .gguf from its metadata, a HF directory
  from its config.json; no tensor is read."""
  if spec == "random":
    raise JaxrecError("config.model.llm='random' has no fixed shape to plan; pass --llm_shape")
  if not spec:
    from jaxrec.llm import assets

    spec = str(assets.default_gguf())
  if str(spec).endswith(".gguf"):
    reader = loading.read_gguf(spec)
    cfg = config_lib.from_gguf_metadata(loading.gguf_metadata(reader), str(spec))
    return cfg.replace(tie_word_embeddings="output.weight" not in {t.name for t in reader.tensors})
  return config_lib.from_hf_dir(loading.resolve_checkpoint(spec))


def resolve(shape: str | None, llm: str | None, shapes_dir: pathlib.Path | None = None) -> tuple[LlamaConfig, str]:
  """(shape, what it is): `shape` names <shapes_dir>/<shape>.json or is a config.json path; None: `llm`'s own."""
  if shape:
    path = pathlib.Path(shape)
    if not path.is_file() and shapes_dir is not None:
      path = shapes_dir / f"{shape}.json"
    if not path.is_file():
      known = sorted(p.stem for p in shapes_dir.glob("*.json")) if shapes_dir is not None else []
      raise JaxrecError(f"--llm_shape: {shape!r} is neither a config.json path nor one of {known}")
    return from_json(path), path.stem
  return of_llm(llm), str(llm or "SmolLM2-135M (embedded)")
