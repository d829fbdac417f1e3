"""One run per workdir: an exclusive lock held for the run's lifetime, a writability check before any work, and
the config a workdir holds (a resume must train exactly what was trained there).

    with workdir.claim(path) as wd:        # exclusive: train, sweep
      ...
    with workdir.claim(path, shared=True): # shared: evaluate (several may read a finished run at once)
      ...

The lock is `fcntl.flock` on `<workdir>/.lock`. The OS releases it when the process dies, so a run killed with
kill -9 never leaves a stale lock behind; the file itself stays (deleting a flock'd file races with a second opener).
The holder's pid is written into the file so that a refused run can name it. A workdir that `claim` created and that
holds nothing but the lock when the block fails is removed again: an early failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pathlib
import shutil
from collections.abc import Mapping
from typing import Any

import ml_collections

from jaxrec.errors import JaxrecError
from jaxrec.paths import atomic_file
from jaxrec.train.checkpoint import StageCheckpoints

LOCK_NAME = ".lock"


def _create(path: pathlib.Path) -> bool:
  """Creates `path` (and parents) if needed; returns whether it was created. One line when that is impossible."""
  if path.exists() and not path.is_dir():
    raise JaxrecError(f"--workdir={path}: exists and is not a directory")
  existed = path.is_dir()
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise JaxrecError(f"--workdir={path}: cannot be created ({e.strerror or e}); choose a writable location") \
        from None
  return not existed


def _probe(path: pathlib.Path) -> None:
  """Writes and removes a file: permission bits, read-only mounts and full disks all show up here."""
  probe = path / f".write-test-{os.getpid()}"
  try:
    with open(probe, "wb") as f:
      f.write(b"ok")
      f.flush()
      os.fsync(f.fileno())
  except OSError as e:
    raise JaxrecError(f"--workdir={path}: not writable ({e.strerror or e}); choose a writable location") from None
  finally:
    with contextlib.suppress(OSError):
      probe.unlink()


@contextlib.contextmanager
def claim(path: pathlib.Path | str, shared: bool = False):
  """Creates `path` if needed, checks it is writable and holds its lock for the block; yields the path.

  A second exclusive claim (from any process) fails at once with one line naming the holder's pid.
  """
  path = pathlib.Path(path)
  created = _create(path)
  try:
    if not shared:
      _probe(path)
    lock = path / LOCK_NAME
    try:
      fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise JaxrecError(f"--workdir={path}: cannot open {lock} ({e.strerror or e})") from None
    try:
      try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
      except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
          raise
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        raise JaxrecError(f"--workdir={path}: in use by another run (pid {holder} holds {lock}); wait for it to "
                          f"finish or use another --workdir") from None
      if not shared:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
      yield path
    finally:
      os.close(fd)  # releases the lock
  except BaseException:
    if created and {p.name for p in path.iterdir()} <= {LOCK_NAME}:
      shutil.rmtree(path, ignore_errors=True)
    raise


# Config fields that only label outputs (results.md): a run differing there trains exactly the same.
# Fields that may change when a run resumes: they decide how scores are computed (shared_prefix: batching; eval_dtype:
# the backbone's dtype when scoring, |ΔAUC| ~2e-4) or which rows the final figures cover (final_eval_rows), not what
# trains.
OUTPUT_ONLY_FIELDS = ("report", "shared_prefix", "eval_dtype", "final_eval_rows")

# Fields added after runs were made with configs that lack them, with the value those runs had (JSON paths):
# reading or resuming such a run fills them in, so older workdirs keep evaluating and resuming.
ADDED_BACKBONE_FIELDS = {"scan_layers": False, "attention": "einsum"}


ADDED_LLMREC_FIELDS = {"eval_dtype": ""}  # runs before it scored in the model's dtype
ADDED_LLMREC_MODEL_FIELDS = {"input_lm_weight": 0.0}  # runs before it trained on the answer alone


def with_added_fields(raw: dict[str, Any]) -> dict[str, Any]:
  """A config JSON dict with the fields of ADDED_*_FIELDS filled in where its sections lack them."""
  model = raw.get("model")
  if isinstance(model, dict) and "keep_layers" in model:  # a backbone section (CoLLM / TALLRec / multi-scale)
    raw = dict(raw, model={**ADDED_BACKBONE_FIELDS, **model})
  if isinstance(model, dict) and model.get("family") == "llmrec":
    raw = {**ADDED_LLMREC_FIELDS, **raw}
    raw["model"] = {**ADDED_LLMREC_MODEL_FIELDS, **raw["model"]}
  return raw


def training_fields(config_dict: Mapping[str, Any]) -> dict[str, Any]:
  """A config (as a JSON dict) without its OUTPUT_ONLY_FIELDS nor `model.attention` (its paths are parity-tested
  to compute the same function, so a run may resume with another): what decides what a run trains. A text-only LLM run
  (TALLRec: model.cf.name 'none') trains no CF model: its cf_train and eval.reference_cf only choose the CF model its
  final figures are paired with."""
  out = {k: v for k, v in config_dict.items() if k not in OUTPUT_ONLY_FIELDS}
  model = out.get("model")
  if isinstance(model, dict) and "attention" in model:  # every attention path computes the same function
    out["model"] = model = {k: v for k, v in model.items() if k != "attention"}
  if isinstance(model, dict) and model.get("family") == "llmrec" and (model.get("cf") or {}).get("name") == "none":
    out.pop("cf_train", None)
    if isinstance(out.get("eval"), dict):
      out["eval"] = {k: v for k, v in out["eval"].items() if k != "reference_cf"}
  return out


def read_config(workdir) -> ml_collections.ConfigDict:
  """The config a run saved (`write_config`): stages as a list of ConfigDicts, as the configs build them."""
  path = pathlib.Path(workdir) / "config.json"
  if not path.is_file():
    raise JaxrecError(f"{path}: missing; expected the workdir of a launch/train.py run")
  try:
    raw = with_added_fields(json.loads(path.read_text()))
    raw["stages"] = [ml_collections.ConfigDict(s) for s in raw["stages"]]
    return ml_collections.ConfigDict(raw)
  except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
    raise JaxrecError(f"{path}: not the config.json of a launch/train.py run ({type(e).__name__}: {e})") from None


def check_config(config, workdir: pathlib.Path) -> None:
  """Refuses (one line, nothing written) a workdir whose config.json trains differently from `config`.

  Allowed: differences in OUTPUT_ONLY_FIELDS, and in the optimiser of a stage that diverged and has not finished
  (lowering the lr of a diverged stage resumes it from its last finite checkpoint).
  """
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    return
  try:
    old = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
    raise JaxrecError(f"{path}: not a readable config ({e}); use a new --workdir") from None
  new = json.loads(config.to_json_best_effort(sort_keys=True))
  old, new = training_fields(with_added_fields(old)), training_fields(new)
  for i, stage in enumerate(new.get("stages", [])):
    if i < len(old.get("stages", [])) and StageCheckpoints.diverged_info(workdir, stage.get("name")) is not None:
      old["stages"][i] = dict(old["stages"][i], optimizer=stage.get("optimizer"))
  if old != new:
    raise JaxrecError(f"{path} holds a run with a different config ({_first_diff(old, new)}); use a new --workdir")


def write_config(config, workdir: pathlib.Path) -> None:
  """Writes workdir/config.json after `check_config` (a run that trains differently is refused; one differing only
  in output labels, or in a diverged stage's optimiser, is updated to the new values)."""
  check_config(config, workdir)
  text = config.to_json_best_effort(indent=2, sort_keys=True)
  path = workdir / "config.json"
  if path.exists() and json.loads(path.read_text()) == json.loads(text):
    return
  with atomic_file(path, "w") as f:
    f.write(text)


def _first_diff(a, b, prefix="config") -> str:
  if isinstance(a, dict) and isinstance(b, dict):
    for k in sorted(set(a) | set(b)):
      if a.get(k) != b.get(k):
        return _first_diff(a.get(k), b.get(k), f"{prefix}.{k}")
  if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
    for i, (x, y) in enumerate(zip(a, b)):
      if x != y:
        return _first_diff(x, y, f"{prefix}[{i}]")
  return f"{prefix}: {a!r} there, {b!r} now"
