"""The real embedded SmolLM2-135M-Instruct (GGUF Q4_1 from PyPI) against transformers' own GGUF loader.

Tolerance: the decoder is identical math (tiny configs agree to ~2e-7), but 30 float32 layers accumulate rounding in
a different order than PyTorch's kernels. Measured max |Δlogit| on these prompts: 0.75e-4 to 1.1e-4 for logits of
magnitude ~40 (3e-6 relative); the bound below is 2e-4 absolute, and the argmax token must agree everywhere.
The brief's 1e-4 is then asserted with both models computing in float64 (norms and softmax stay float32 in both, as
transformers does), which removes the accumulation-order noise: measured 2.6e-5 there.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxrec.llm import assets, generate, loading, tokenizer
from jaxrec.llm.model import Decoder

pytestmark = pytest.mark.slow  # real weights or end-to-end runs: `pytest -m 'not slow'` leaves them out

TOL_REAL = 2e-4  # float32 compute on both sides
TOL_F64 = 1e-4  # float64 compute on both sides
PROMPTS = [
    "Hello world, how are you?",
    'The user liked "Toy Story" and "Heat". Will the user like "Casino"? Answer:',
    "SmolLM is a small language model; it answers questions about 1,234 books.",
]


@pytest.fixture(scope="module")
def smollm():
  cfg, params = loading.load_pretrained(None)  # None → the embedded default
  return cfg, params, tokenizer.load_default_tokenizer()


def test_config_is_smollm2(smollm):
  cfg, params, _ = smollm
  assert (cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.vocab_size) == (30, 576, 9, 3, 49152)
  assert cfg.tie_word_embeddings and cfg.rope_theta == 1e5 and "lm_head" not in params


def test_logits_match_transformers_gguf_loader(smollm):
  import torch
  from transformers import AutoModelForCausalLM

  cfg, params, tok = smollm
  g = assets.default_gguf()
  ref = AutoModelForCausalLM.from_pretrained(str(g.parent), gguf_file=g.name, dtype=torch.float32).eval()
  enc = tok(PROMPTS, padding=True, return_tensors="np")
  ids, mask = enc["input_ids"], enc["attention_mask"]
  assert (mask[:, 0] == 0).any()  # left padding is exercised
  pos = np.clip(mask.cumsum(-1) - 1, 0, None)
  with torch.no_grad():
    want = ref(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), position_ids=torch.tensor(pos))
  want = want.logits.numpy()
  got = np.asarray(Decoder(cfg).apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))["logits"])
  real = mask > 0
  assert np.abs(got - want)[real].max() <= TOL_REAL
  assert (got.argmax(-1) == want.argmax(-1))[real].all()

  import jax

  with torch.no_grad():
    want64 = ref.double()(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                          position_ids=torch.tensor(pos)).logits.numpy()
  with jax.enable_x64(True):
    p64 = jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
    got64 = Decoder(cfg, dtype=jnp.float64).apply({"params": p64}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    got64 = np.asarray(got64["logits"])
  assert np.abs(got64 - want64)[real].max() <= TOL_F64

  # Without undoing llama.cpp's q/k row permutation the model is wrong by a wide margin.
  broken = loading.map_tensors
  table = [(s, d, "transpose" if f.startswith("unpermute") else f) for s, d, f in loading.gguf_table("llama")]
  import gguf

  reader = loading.read_gguf(g)
  tensors = {t.name: t for t in reader.tensors}
  raw = broken(tensors, lambda n: gguf.quants.dequantize(tensors[n].data, tensors[n].tensor_type), table, cfg, "x")
  bad = np.asarray(Decoder(cfg).apply({"params": raw}, jnp.asarray(ids), attention_mask=jnp.asarray(mask))["logits"])
  assert np.abs(bad - want)[real].max() > 1.0


def test_tokenizer_matches_transformers_gguf_tokenizer(smollm):
  from transformers import AutoTokenizer

  *_, tok = smollm
  g = assets.default_gguf()
  ref = AutoTokenizer.from_pretrained(str(g.parent), gguf_file=g.name)
  chat = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
  for text in PROMPTS + [chat]:
    assert tok(text, add_special_tokens=False)["input_ids"] == ref(text, add_special_tokens=False)["input_ids"]
  assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 2)
  assert tok.padding_side == "left"


def test_greedy_generation_knows_the_capital_of_france(smollm):
  cfg, params, tok = smollm
  prompt = generate.chat_prompt(tok, "What is the capital of France?")
  out = generate.greedy_generate(Decoder(cfg), {"params": params}, [prompt], max_new_tokens=10,
                                 eos_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_id=tok.pad_token_id)
  assert tok.decode(out[0], skip_special_tokens=True).strip() == "The capital of France is Paris."
