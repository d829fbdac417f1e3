"""Persisting an index with its run: `<workdir>/index/{index.faiss, item_ids.npy, manifest.json}`.

The manifest says what the index was built from, so that loading it for anything else fails in one line:

  run          workdir (informative) and the sha256 of the run's config.json (which run)
  embeddings   path (relative to the workdir) and sha256 of the item table it indexes (stale after a retrain)
  n_items, dim the catalogue size and vector size
  index        the index config section, Faiss ntotal, the MIPS constant, sha256 of index.faiss and item_ids.npy
  faiss        version that wrote it; built_at, build_seconds

The folder is written with `jaxrec.paths.atomic_dir`, so a reader sees a complete index or none.
"""

from __future__ import annotations

import json
import pathlib
import time

import faiss
import ml_collections
import numpy as np

from jaxrec.errors import JaxrecError
from jaxrec.index import faiss_index
from jaxrec.index.config import validate
from jaxrec.paths import atomic_dir, sha256_file

FORMAT = 1
FOLDER = "index"
EMBEDDINGS = "embeddings/item.npy"


def _rebuild(workdir) -> str:
  return f"rebuild it with python launch/build_index.py --workdir={workdir}"


def run_identity(workdir: pathlib.Path) -> dict:
  """{'config_sha256', 'embeddings_sha256'} of a finished CF run (what an index built now would record)."""
  config, emb = workdir / "config.json", workdir / EMBEDDINGS
  for path in (config, emb):
    if not path.is_file():
      raise JaxrecError(f"{path}: missing; expected a finished CF run (launch/train.py with configs/baselines/...)")
  return {"config_sha256": sha256_file(config), "embeddings_sha256": sha256_file(emb)}


def save(workdir, item_index: faiss_index.ItemIndex, n_items: int) -> pathlib.Path:
  """Writes the index folder of `workdir` atomically; returns its path."""
  workdir = pathlib.Path(workdir)
  ident = run_identity(workdir)
  final = workdir / FOLDER
  with atomic_dir(final) as tmp:
    (tmp / "index.faiss").write_bytes(faiss_index.serialize(item_index))
    np.save(tmp / "item_ids.npy", item_index.item_ids)
    manifest = {
        "format": FORMAT,
        "run": {"workdir": str(workdir.resolve()), "config_sha256": ident["config_sha256"]},
        "embeddings": {"path": EMBEDDINGS, "sha256": ident["embeddings_sha256"]},
        "n_items": int(n_items), "dim": int(item_index.vectors.shape[1]),
        "index": {"config": item_index.cfg.to_dict(), "ntotal": item_index.ntotal, "max_norm": item_index.max_norm,
                  "sha256": sha256_file(tmp / "index.faiss"), "item_ids_sha256": sha256_file(tmp / "item_ids.npy")},
        "faiss": faiss.__version__, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(item_index.build_seconds, 3),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
  return final


def read_manifest(workdir) -> dict:
  folder = pathlib.Path(workdir) / FOLDER
  path = folder / "manifest.json"
  if not path.is_file():
    raise JaxrecError(f"{folder}: no index; {_rebuild(workdir)}")
  try:
    manifest = json.loads(path.read_text())
  except json.JSONDecodeError:
    raise JaxrecError(f"{path}: not valid JSON; {_rebuild(workdir)}") from None
  if manifest.get("format") != FORMAT:
    raise JaxrecError(f"{path}: index format {manifest.get('format')!r}, expected {FORMAT}; {_rebuild(workdir)}")
  return manifest


def check(workdir, manifest: dict, n_items: int, dim: int) -> None:
  """Raises a one-line JaxrecError when the index in `workdir` was not built from this run as it is now."""
  folder = pathlib.Path(workdir) / FOLDER
  fix = _rebuild(workdir)
  if manifest["n_items"] != n_items:
    raise JaxrecError(f"{folder}: built for {manifest['n_items']} items, but this run's catalogue has {n_items} "
                      f"(an index of another dataset or run); {fix}")
  if manifest["dim"] != dim:
    raise JaxrecError(f"{folder}: built for {manifest['dim']}-d vectors, but this run's embeddings are {dim}-d; {fix}")
  ident = run_identity(pathlib.Path(workdir))
  if manifest["run"]["config_sha256"] != ident["config_sha256"]:
    raise JaxrecError(f"{folder}: built for another run ({manifest['run']['workdir']}, config.json sha256 "
                      f"{manifest['run']['config_sha256'][:12]}, this run's is {ident['config_sha256'][:12]}); {fix}")
  if manifest["embeddings"]["sha256"] != ident["embeddings_sha256"]:
    raise JaxrecError(f"{folder}: stale: built from {EMBEDDINGS} sha256 {manifest['embeddings']['sha256'][:12]}, "
                      f"the run's is now {ident['embeddings_sha256'][:12]} (retrained?); {fix}")
  for name, key in (("index.faiss", "sha256"), ("item_ids.npy", "item_ids_sha256")):
    if sha256_file(folder / name) != manifest["index"][key]:
      raise JaxrecError(f"{folder / name}: checksum differs from the manifest (corrupt or partly copied); {fix}")


def load(workdir, item_table: np.ndarray, n_items: int, overrides=None) -> tuple[faiss_index.ItemIndex, dict]:
  """(index, manifest) of `workdir`, checked against the run; `item_table` [n_items + 1, D] is the run's.

  `overrides` (a dict) changes search-time knobs only (ivf.nprobe, hnsw.ef_search, device, threads, retrieve.*).
  """
  workdir = pathlib.Path(workdir)
  manifest = read_manifest(workdir)
  check(workdir, manifest, n_items, int(item_table.shape[1]))
  folder = workdir / FOLDER
  cfg = ml_collections.ConfigDict(manifest["index"]["config"])
  overrides = overrides or {}
  for key, value in overrides.items():
    _override(cfg, key, value)
  if "retrieve.n" not in overrides and cfg.retrieve.k > cfg.retrieve.n:  # a larger K alone widens N with it
    cfg.retrieve.n = cfg.retrieve.k
  validate(cfg)
  item_ids = np.load(folder / "item_ids.npy", allow_pickle=False)
  index = faiss_index.deserialize((folder / "index.faiss").read_bytes(), item_table[item_ids], item_ids, cfg,
                                  float(manifest["index"]["max_norm"]))
  if index.ntotal != manifest["index"]["ntotal"] or index.ntotal != len(item_ids):
    raise JaxrecError(f"{folder}: index holds {index.ntotal} vectors, the manifest says "
                      f"{manifest['index']['ntotal']} and the id map {len(item_ids)}; {_rebuild(workdir)}")
  return index, manifest


SEARCH_TIME = ("device", "threads", "ivf.nprobe", "hnsw.ef_search", "retrieve.")


def _override(cfg, key: str, value) -> None:
  """Sets `key` (dotted) when it is a search-time knob; build-time ones need a rebuild."""
  if not any(key == s or (s.endswith(".") and key.startswith(s)) for s in SEARCH_TIME):
    raise JaxrecError(f"index.{key}: fixed when the index was built; rebuild with launch/build_index.py "
                      f"--config.{key}=...")
  *parents, leaf = key.split(".")
  node = cfg
  for p in parents:
    node = node[p]
  if leaf not in node:
    raise JaxrecError(f"index.{key}: no such field")
  node[leaf] = type(node[leaf])(value) if node[leaf] is not None else value
