"""Dataset fetchers against a local HTTP server on 127.0.0.1 (started and stopped here; no outside network):
success (verified, atomic, stamped, fetched once), checksum mismatch, truncation, timeout and offline."""

import gzip
import hashlib
import http.server
import io
import json
import threading
import time
import zipfile

import pytest

from jaxrec import data as jdata, paths
from jaxrec.data import fetch
from jaxrec.errors import JaxrecError


class _Handler(http.server.BaseHTTPRequestHandler):
  files: dict = {}
  hits: list = []

  def do_GET(self):  # noqa: N802 (the http.server API)
    mode, _, name = self.path.lstrip("/").partition("/")
    self.hits.append(self.path)
    body = self.files.get(name)
    if body is None:
      self.send_error(404)
      return
    if mode == "slow":
      time.sleep(2.0)
    if mode == "bad":
      body = body[::-1]
    try:
      self.send_response(200)
      self.send_header("Content-Length", str(len(body)))
      self.end_headers()
      self.wfile.write(body[: len(body) // 2] if mode == "trunc" else body)
      self.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
      pass  # the client gave up (the timeout case)

  def log_message(self, *args):  # quiet
    pass


@pytest.fixture
def server(monkeypatch, tmp_path):
  """(base url, files dict, hits list) of a server on a free local port; JAXREC_CACHE under tmp_path."""
  monkeypatch.setenv("JAXREC_CACHE", str(tmp_path / "cache"))
  _Handler.files, _Handler.hits = {}, []
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
  httpd.daemon_threads = False  # server_close() waits for every request (a slow one included): nothing outlives it
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler.files, _Handler.hits
  httpd.shutdown()
  httpd.server_close()
  thread.join(timeout=5)


def _blob_id(b: bytes) -> str:
  return hashlib.sha1(f"blob {len(b)}\0".encode() + b).hexdigest()


def _tallrec_files(shared_data) -> dict[str, bytes]:
  records = json.loads((shared_data / "bookcrossing-tallrec" / "valid.json").read_text())
  parts = {"train.json": records[:1000], "valid.json": records[1000:1700], "test.json": records[1700:]}
  return {k: json.dumps(v).encode() for k, v in parts.items()}


def _remotes(base, files, mode="ok", **kw):
  return tuple(fetch.Remote(f"{base}/{mode}/{name}", name, **({"git_blob_sha1": _blob_id(b)} if name == "train.json"
                                                              else {"sha256": hashlib.sha256(b).hexdigest()}), **kw)
               for name, b in files.items())


def test_bookcrossing_fetched_verified_once_and_used(server, shared_data, tmp_path, monkeypatch, capsys):
  base, files, hits = server
  files.update(_tallrec_files(shared_data))
  monkeypatch.setattr(fetch, "TALLREC_BOOK", _remotes(base, files))
  cfg = jdata.get_data_config("bookcrossing")
  cfg.root = str(tmp_path / "empty")
  ds = jdata.load_dataset(cfg)
  assert len(ds["train"]) == 64 and len(ds["valid"]) == 700  # TALLRec's own split: shots from train.json
  err = capsys.readouterr().err
  assert all(f"fetched {n} from {base}/ok/{n}" in err for n in files), err
  cache = paths.cache_dir() / "downloads" / "bookcrossing-tallrec"
  assert {p.name: p.read_bytes() for p in cache.iterdir() if not p.name.startswith(".")} == files
  assert len(list(cache.glob(".*.stamp.json"))) == 3
  jdata.load_dataset(cfg)  # found in the cache (and checked against its stamps): not fetched again
  assert len(hits) == 3
  (cache / "valid.json").write_bytes(files["valid.json"].replace(b"Yes.", b"No. ", 1))
  with pytest.raises(JaxrecError, match="valid.json: SHA-256 .* delete it and re-run"):
    jdata.load_dataset(cfg)


def test_ml1m_zip_fetched_and_extracted(server, tmp_path, monkeypatch):
  base, files, _ = server
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:
    z.writestr("ml-1m/ratings.dat", "".join(f"{u}::{i}::4::{978300000 + u * 10 + i}\n" for u in range(1, 21)
                                           for i in range(1, 16)))
    z.writestr("ml-1m/movies.dat", "".join(f"{i}::Movie {i} (1999)::Drama\n" for i in range(1, 16)))
    z.writestr("ml-1m/users.dat", "1::F::1::10::48067\n")
    z.writestr("ml-1m/README", "fixture\n")
  files["ml-1m.zip"] = buf.getvalue()
  monkeypatch.setattr(fetch, "ML1M_ZIP", (fetch.Remote(f"{base}/ok/ml-1m.zip", "ml-1m.zip",
                                                       sha256=hashlib.sha256(buf.getvalue()).hexdigest(),
                                                       extract=fetch.ML1M_ZIP[0].extract),))
  cfg = jdata.get_data_config("ml1m_topk")
  cfg.root, cfg.use_cache = str(tmp_path / "empty"), False
  ds = jdata.load_dataset(cfg)
  assert ds.n_users == 20 and ds.n_items == 15 and ds.item_text[1] == "Movie 1 (1999)"
  cache = paths.cache_dir() / "downloads" / "ml-1m"
  assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == ["README", "movies.dat",
                                                                                    "ratings.dat", "users.dat"]


@pytest.mark.parametrize("mode, names, expect", [
    ("bad", ("train.json",), "gave git blob id "),
    ("bad", ("valid.json", "test.json"), "gave SHA-256 "),
    ("trunc", ("valid.json",), "ended after"),
    ("slow", ("valid.json",), "could not download"),
])
def test_failed_downloads_keep_nothing_and_say_what_to_do(server, shared_data, tmp_path, monkeypatch, mode, names,
                                                          expect):
  base, files, _ = server
  files.update({k: v for k, v in _tallrec_files(shared_data).items() if k in names})
  monkeypatch.setattr(fetch, "TALLREC_BOOK", _remotes(base, files, mode))
  t0 = time.time()
  with pytest.raises(JaxrecError) as e:
    fetch.fetch("bookcrossing", fetch.TALLREC_BOOK, tmp_path / "out", how="put them in X", timeout_s=0.5)
  msg = str(e.value)
  assert "\n" not in msg and expect in msg and msg.endswith("put them in X"), msg
  assert time.time() - t0 < 10
  assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == []  # no folder, no temporary left


def test_offline_and_unchecksummed_gzip(server, tmp_path):
  base, files, _ = server
  with pytest.raises(JaxrecError, match=r"could not download http://127.0.0.1:1/x.json \(.*\); put it there"):
    fetch.fetch("x", (fetch.Remote("http://127.0.0.1:1/x.json", "x.json"),), tmp_path / "o", "put it there", 2.0)
  whole = gzip.compress(b'{"asin": "B1"}\n' * 5000)
  files["meta.json.gz"] = whole[: len(whole) - 40] + b"\0" * 40  # right length, broken stream: no sum to pin
  with pytest.raises(JaxrecError, match="gave not a complete gzip file"):
    fetch.fetch("amazon", (fetch.Remote(f"{base}/ok/meta.json.gz", "meta.json.gz"),), tmp_path / "a", "how", 5.0)
  files["meta.json.gz"] = whole
  out = fetch.fetch("amazon", (fetch.Remote(f"{base}/ok/meta.json.gz", "meta.json.gz"),), tmp_path / "a", "how", 5.0)
  assert (out / "meta.json.gz").read_bytes() == whole


@pytest.mark.slow
def test_design_card_command_on_a_machine_with_only_a_network(server, shared_data, tmp_path, monkeypatch, capsys):
  """`launch/train.py --config=configs/bookcrossing.py` (its :tiny budget) with no data root and an empty cache:
  TALLRec's files arrive from the (local) server, the SASRec CF model and both LLM stages train."""
  from conftest import REPO
  from jaxrec.llm import assets
  from launch import _cli, train as launch_train

  monkeypatch.setenv("JAXREC_SMOLLM2_GGUF", str(assets.default_gguf()))  # the tokenizer, not refetched here
  monkeypatch.delenv("JAXREC_DATA", raising=False)
  base, files, hits = server
  files.update(_tallrec_files(shared_data))
  monkeypatch.setattr(fetch, "TALLREC_BOOK", _remotes(base, files))
  workdir = tmp_path / "run"
  _cli.run(launch_train.main, ["train.py", f"--config={REPO}/configs/bookcrossing.py:tiny", f"--workdir={workdir}",
                               "--noprogress"])
  assert sorted(hits) == [f"/ok/{n}" for n in sorted(files)]  # fetched once, for the CF model and the LLM alike
  metrics = json.loads((workdir / "metrics.json").read_text())["splits"]
  assert 0.0 <= metrics["valid"]["auc"] <= 1.0 and (workdir / "cf" / "metrics.json").is_file()
