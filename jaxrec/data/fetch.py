"""Datasets fetched where they live: download, verify, write atomically into the cache, say what came from where.

    folder = fetch.fetch("bookcrossing", fetch.TALLREC_BOOK, cache / "bookcrossing-tallrec", how=HOW_JSON)

Each `Remote` is checked against a pinned SHA-256, else the git blob id its repository records (the SHA-1 of
"blob <size>\\0" + bytes), else, for files whose publisher gives no checksum (the Amazon Review Data), against the
gzip stream's own CRC: every gzip member is read to its end, so a truncated download is refused. A download shows
its progress (bytes, rate, ETA) on stderr. Offline, on a truncated transfer, a timeout or a checksum mismatch,
nothing is kept and one line says what happened, what to download and where to put it. The files land in the folder
together or not at all (`paths.atomic_dir`), each with the stamp `paths.verify_file` checks on later use.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import pathlib
import shutil
import sys
import urllib.error
import urllib.request
import zipfile

from tqdm.auto import tqdm

from jaxrec import paths
from jaxrec.errors import JaxrecError


@dataclasses.dataclass(frozen=True)
class Remote:
  url: str
  name: str  # the file's name in the folder (an archive's: its download name; see `extract`)
  sha256: str | None = None
  git_blob_sha1: str | None = None
  size: int | None = None
  extract: tuple[str, ...] = ()  # zip members to keep (their base names land in the folder); () keeps the file


_TALLREC = "https://raw.githubusercontent.com/SAI990323/TALLRec/c1db29ce6501bce32cc8c3e343c4eb14155beeb1/data/book"
# Computed from the repository's blobs at that commit (valid.json equals ../shared/data's copy byte for byte).
TALLREC_BOOK = (
    Remote(f"{_TALLREC}/train.json", "train.json", git_blob_sha1="ca3b6b7b028a679ffac30eda342f1697b54d4156"),
    Remote(f"{_TALLREC}/valid.json", "valid.json", size=2015549,
           sha256="484165aefc7941fd9f19cc9f42144832d5cee7424b15dc661b753d7705769aa2"),
    Remote(f"{_TALLREC}/test.json", "test.json", size=2003057,
           sha256="28ab5fe8b28f4094b7fa5b0d46acdbb3984f55e728d04f78e3ea42e7c2bf102b"),
)
# tensorflow_datasets' url_checksums/movielens.txt pins the same size and SHA-256.
ML1M_ZIP = (Remote("https://files.grouplens.org/datasets/movielens/ml-1m.zip", "ml-1m.zip", size=5917549,
                   sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
                   extract=("ml-1m/ratings.dat", "ml-1m/movies.dat", "ml-1m/users.dat", "ml-1m/README")),)
_AMAZON = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2"
# The publisher gives no checksums: these are checked as complete gzip streams (and stamped once fetched).
AMAZON_BOOKS = (Remote(f"{_AMAZON}/categoryFilesSmall/Books_5.json.gz", "Books_5.json.gz"),
                Remote(f"{_AMAZON}/metaFiles2/meta_Books.json.gz", "meta_Books.json.gz"))


def _download(remote: Remote, dest: pathlib.Path, timeout_s: float, what: str, how: str) -> None:
  """Streams `remote.url` to `dest` with a progress bar; checks the length the server announced."""
  try:
    with urllib.request.urlopen(remote.url, timeout=timeout_s) as r, open(dest, "wb") as out:
      announced = int(r.headers.get("Content-Length") or 0)
      with tqdm(total=announced or remote.size, unit="B", unit_scale=True, unit_divisor=1024, desc=remote.name, file=sys.stderr,
                leave=False, disable=None) as bar:
        got = 0
        for chunk in iter(lambda: r.read(1 << 20), b""):
          out.write(chunk)
          got += len(chunk)
          bar.update(len(chunk))
  except http.client.IncompleteRead as e:
    raise JaxrecError(f"{what}: {remote.url} ended after {len(e.partial)} bytes, before its end (nothing was "
                      f"kept); {how}") from None
  except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
    reason = getattr(e, "reason", None) or e
    raise JaxrecError(f"{what}: could not download {remote.url} ({reason}); {how}") from None
  if announced and got != announced:
    raise JaxrecError(f"{what}: {remote.url} ended after {got} of {announced} bytes (nothing was kept); {how}")


def _verify(remote: Remote, path: pathlib.Path, what: str, how: str) -> str:
  """SHA-256 of the download after its pinned check; one line and nothing kept when it fails."""
  size = path.stat().st_size
  digest = paths.sha256_file(path)
  problem = None
  if remote.size is not None and size != remote.size:
    problem = f"{size} bytes, expected {remote.size}"
  elif remote.sha256 and digest != remote.sha256:
    problem = f"SHA-256 {digest}, expected {remote.sha256}"
  elif remote.git_blob_sha1:
    h = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
      for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    if h.hexdigest() != remote.git_blob_sha1:
      problem = f"git blob id {h.hexdigest()}, expected {remote.git_blob_sha1}"
  elif remote.name.endswith(".gz"):
    try:
      with gzip.open(path, "rb") as f:
        while f.read(1 << 22):
          pass
    except (OSError, EOFError) as e:
      problem = f"not a complete gzip file ({e})"
  if problem:
    raise JaxrecError(f"{what}: {remote.url} gave {problem} (nothing was kept); {how}")
  return digest


def fetch(what: str, remotes, folder: pathlib.Path, how: str, timeout_s: float = 30.0) -> pathlib.Path:
  """Downloads and verifies every remote, then moves them into `folder` at once; returns `folder`."""
  folder = pathlib.Path(folder)
  print(f"jaxrec: {what} not found locally; fetching it into {folder}", file=sys.stderr, flush=True)
  digests = {}  # file name → SHA-256, for the stamps
  with paths.atomic_dir(folder) as tmp:
    for remote in remotes:
      _download(remote, tmp / remote.name, timeout_s, what, how)
      digests[remote.name] = _verify(remote, tmp / remote.name, what, how)
      if remote.extract:
        try:
          with zipfile.ZipFile(tmp / remote.name) as z:
            for member in remote.extract:
              with z.open(member) as src, open(tmp / pathlib.PurePosixPath(member).name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (zipfile.BadZipFile, KeyError) as e:
          raise JaxrecError(f"{what}: {remote.url} is not the expected archive ({e}); {how}") from None
        (tmp / remote.name).unlink()
        del digests[remote.name]
        for member in remote.extract:
          name = pathlib.PurePosixPath(member).name
          digests[name] = paths.sha256_file(tmp / name)
      print(f"jaxrec: fetched {remote.name} from {remote.url}", file=sys.stderr, flush=True)
  for name, digest in digests.items():
    paths.record_file(folder / name, digest)
  return folder


def verified(folder: pathlib.Path) -> pathlib.Path:
  """A fetched folder after checking each file against the stamp written when it was fetched."""
  for f in sorted(pathlib.Path(folder).iterdir()):
    if not f.name.startswith("."):
      paths.verify_file(f, None)
  return folder
