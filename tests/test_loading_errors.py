"""Bad checkpoint directories and files fail with one line that names the file and what is wrong."""

import json
import shutil

import numpy as np
import pytest

from jaxrec.errors import JaxrecError
from jaxrec.llm import loading
from llm_fixtures import tiny_hf


@pytest.fixture(scope="module")
def good(tmp_path_factory):
  d = tmp_path_factory.mktemp("good")
  tiny_hf("llama", d)
  return d


def _copy(good, tmp_path):
  d = tmp_path / "ckpt"
  shutil.copytree(good, d)
  return d


def _one_line(e):
  msg = str(e.value)
  assert "\n" not in msg
  return msg


def test_missing_config(good, tmp_path):
  d = _copy(good, tmp_path)
  (d / "config.json").unlink()
  with pytest.raises(JaxrecError) as e:
    loading.load_hf(str(d))
  assert "config.json: not found" in _one_line(e)


def test_missing_weights(good, tmp_path):
  d = _copy(good, tmp_path)
  (d / "model.safetensors").unlink()
  with pytest.raises(JaxrecError) as e:
    loading.load_hf(str(d))
  assert "no model.safetensors" in _one_line(e) and str(d) in str(e.value)


def test_truncated_safetensors(good, tmp_path):
  d = _copy(good, tmp_path)
  f = d / "model.safetensors"
  f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
  with pytest.raises(JaxrecError) as e:
    loading.load_hf(str(d))
  msg = _one_line(e)
  assert str(f) in msg and "corrupt or truncated" in msg


def test_index_listing_absent_shard(good, tmp_path):
  d = _copy(good, tmp_path)
  (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"model.norm.weight": "shard-2.st"}}))
  with pytest.raises(JaxrecError) as e:
    loading.load_hf(str(d))
  assert "shard-2.st" in _one_line(e)


def test_unmapped_missing_and_misshaped_keys_are_all_listed(good, tmp_path):
  from safetensors.numpy import load_file, save_file

  d = _copy(good, tmp_path)
  t = load_file(str(d / "model.safetensors"))
  t["model.layers.0.extra.weight"] = np.zeros(3, np.float32)  # unmapped
  del t["model.layers.1.mlp.up_proj.weight"]  # missing
  t["model.norm.weight"] = np.zeros(7, np.float32)  # mis-shaped
  save_file(t, str(d / "model.safetensors"))
  with pytest.raises(JaxrecError) as e:
    loading.load_hf(str(d))
  msg = _one_line(e)
  assert "unmapped: model.layers.0.extra.weight" in msg
  assert "missing: layers_1/mlp/up_proj/kernel" in msg
  assert "mis-shaped: model.norm.weight → norm/scale: (7,), expected (64,)" in msg


def test_unsupported_model_type(good, tmp_path):
  d = _copy(good, tmp_path)
  c = json.loads((d / "config.json").read_text())
  (d / "config.json").write_text(json.dumps(c | {"model_type": "gpt2"}))
  with pytest.raises(JaxrecError, match="model_type 'gpt2' is not supported"):
    loading.load_hf(str(d))


def test_hub_id_offline_names_what_to_download(monkeypatch):
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  with pytest.raises(JaxrecError) as e:
    loading.load_hf("HuggingFaceTB/SmolLM2-135M-Instruct")
  msg = _one_line(e)
  assert "hf download HuggingFaceTB/SmolLM2-135M-Instruct" in msg


def test_corrupt_and_truncated_gguf(tmp_path):
  bad = tmp_path / "bad.gguf"
  bad.write_bytes(b"GGUF" + b"\x00" * 20)
  with pytest.raises(JaxrecError) as e:
    loading.load_gguf(bad)
  assert str(bad) in _one_line(e) and "not a readable GGUF" in str(e.value)
  with pytest.raises(JaxrecError, match="GGUF file not found"):
    loading.load_gguf(tmp_path / "absent.gguf")


def test_truncated_real_gguf(tmp_path):
  from jaxrec.llm import assets

  src = assets.default_gguf()
  cut = tmp_path / "cut.gguf"
  with open(src, "rb") as f:
    cut.write_bytes(f.read(5_000_000))
  with pytest.raises(JaxrecError) as e:
    loading.load_gguf(cut)
  assert str(cut) in _one_line(e)
