"""launch/score.py: zero-shot TALLRec P(Yes) with TALLRec's slot-free prompt and the answer tokens that follow its
tail, equal to transformers' PyTorch model on the same tokens (SmolLM2 from its GGUF, f32: ≤ 1e-4)."""

import csv

import numpy as np
import pytest

from conftest import REPO
from jaxrec.data import prompts
from jaxrec.llm import assets, tokenizer
from jaxrec.models.llmrec import answer_token_ids
from launch import score


@pytest.mark.slow
def test_score_py_is_zero_shot_tallrec_and_matches_transformers(shared_data, tmp_path):
  import torch
  from transformers import AutoModelForCausalLM

  from jaxrec.data import get_data_config, load_dataset
  from jaxrec.index.llm_scorer import make_llm_scorer

  args = ["score.py", f"--config={REPO}/configs/data_ml1m_collm.py", f"--config.data.root={shared_data}",
          f"--workdir={tmp_path}", "--rows=6", "--batch=6", "--llm=smollm2"]
  result = score.main(args)
  template = prompts.TEMPLATES["tallrec_movie"]  # CoLLM's ML-1M data template has ID slots: never cut them out
  assert result["template"] == template and "<UserID>" not in template and "<TargetItemID>" not in template
  tok = tokenizer.load_tokenizer(None)
  yes, no = answer_token_ids(tok, template)  # " Yes" / " No" after "#Answer:"
  assert result["answer_token_ids"] == [yes, no]
  assert yes != tok("Yes", add_special_tokens=False)["input_ids"][0]  # the bare token the old scorer read
  with open(tmp_path / "scores.csv") as f:
    ours = np.array([float(r["p_yes"]) for r in csv.DictReader(f)])

  data_cfg = get_data_config("ml1m_collm")  # what configs/data_ml1m_collm.py holds
  data_cfg.root = str(shared_data)
  ds = load_dataset(data_cfg)
  sp = ds["valid_small"]
  rows = np.arange(6)
  batch = make_llm_scorer("smollm2", ds.item_text, data_cfg, ds.name, template="tallrec_movie").encode(
      {"user": sp.user[rows], "item": sp.item[rows], "history": sp.history[rows],
       "history_label": sp.history_label[rows]})
  gguf = assets.default_gguf()
  model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
  mask = torch.tensor(batch["attention_mask"])
  with torch.no_grad():
    logits = model(input_ids=torch.tensor(batch["input_ids"]), attention_mask=mask,
                   position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1, [yes, no]]
  theirs = torch.softmax(logits, -1)[:, 0].numpy()
  np.testing.assert_allclose(ours, theirs, atol=1e-4)
  assert 0.0 <= result["auc"] <= 1.0


def test_chat_template_answers_and_bad_template_name(shared_data, tmp_path):
  """The instruct model's ChatML turn: the answer is the first token of the open assistant turn ("Yes" / "No" with
  no leading space), and its special tokens stay single tokens; an unknown --template is one line."""
  tok = tokenizer.load_tokenizer(None)
  template = prompts.TEMPLATES["tallrec_book_chat"]
  yes, no = answer_token_ids(tok, template)
  assert (yes, no) == (tok("Yes", add_special_tokens=False)["input_ids"][0],
                       tok("No", add_special_tokens=False)["input_ids"][0])
  ids = tok(template.split("<ItemTitleList>")[0], add_special_tokens=False)["input_ids"]
  assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
  from jaxrec.errors import JaxrecError
  with pytest.raises(JaxrecError, match=r"--template=nope: expected one of \["):
    score.main(["score.py", f"--config={REPO}/configs/data_bookcrossing.py", f"--config.data.root={shared_data}",
                f"--workdir={tmp_path}", "--template=nope"])
