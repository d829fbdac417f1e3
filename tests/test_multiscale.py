"""Each equation's module of the multi-scale recommender against a direct NumPy reference on small inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrec.multiscale import align as A, fusion as F, losses as L, pooling as P, text as T

RNG = np.random.default_rng(0)


# --- eq. 2: pooling --------------------------------------------------------------------------------------------------

def test_layer_groups_and_scale_layers():
  assert P.layer_groups(6, 3) == [(0, 2), (2, 4), (4, 6)]
  assert P.layer_groups(5, 2) == [(0, 2), (2, 5)] or P.layer_groups(5, 2) == [(0, 3), (3, 5)]
  assert P.layer_groups(4, 1) == [(0, 4)]
  assert P.scale_layers(6, 3) == [2, 4, 6]  # hidden_states index = top layer of each group
  assert P.scale_layers(6, 2, [1, -1]) == [1, 6]
  with pytest.raises(ValueError):
    P.layer_groups(2, 3)


def _segments():
  # row 0: prefix(2) + item ranks 2,2,1,0,0; row 1: left padding, prefix, item 0 only; row 2: no history at all
  seg = np.array([[-1, -1, 2, 2, 1, 0, 0], [-1, -1, -1, -1, -1, 0, 0], [-1, -1, -1, -1, -1, -1, -1]])
  mask = np.array([[1] * 7, [0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1]])
  return seg, mask


@pytest.mark.parametrize("window", [0, 1, 2])
def test_window_mask_and_mean_pool_match_numpy(window):
  seg, mask = _segments()
  h = RNG.normal(size=(3, 7, 5)).astype(np.float32)
  got_mask = np.asarray(P.window_mask(jnp.asarray(seg), window, jnp.asarray(mask)))
  ref = (seg >= 0) & ((seg < window) if window > 0 else True)
  ref = ref.astype(np.float32)
  ref[2] = mask[2]  # no item token: falls back to the real tokens
  np.testing.assert_array_equal(got_mask, ref)
  pooled = np.asarray(P.mean_pool(jnp.asarray(h), jnp.asarray(ref)))
  for b in range(3):
    np.testing.assert_allclose(pooled[b], h[b][ref[b] > 0].mean(0), rtol=1e-5, atol=1e-6)


def test_attention_pool_matches_numpy():
  seg, mask = _segments()
  h = RNG.normal(size=(3, 7, 4)).astype(np.float32)
  q = RNG.normal(size=(4,)).astype(np.float32)
  m = np.asarray(P.window_mask(jnp.asarray(seg), 0, jnp.asarray(mask)))
  got = np.asarray(P.attention_pool(jnp.asarray(h), jnp.asarray(m), jnp.asarray(q)))
  for b in range(3):
    hs = h[b][m[b] > 0]
    e = hs @ q / 2.0
    w = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
    np.testing.assert_allclose(got[b], w @ hs, rtol=1e-5, atol=1e-6)


def test_pool_scales_reads_each_scales_layer_and_window():
  seg, mask = _segments()
  hidden = [RNG.normal(size=(3, 7, 4)).astype(np.float32) for _ in range(4)]
  out = np.asarray(P.pool_scales([jnp.asarray(x) for x in hidden], jnp.asarray(seg), jnp.asarray(mask), [1, 3],
                                 [1, 0], "mean"))
  assert out.shape == (3, 2, 4)
  np.testing.assert_allclose(out[0, 0], hidden[1][0, 5:7].mean(0), rtol=1e-5)  # last item, layer 1
  np.testing.assert_allclose(out[0, 1], hidden[3][0, 2:7].mean(0), rtol=1e-5)  # whole history, layer 3


# --- eq. 3-4: multi-scale LoRA --------------------------------------------------------------------------------------

def _adapters(num_layers, r=3, d=6, zero_b=False):
  out = {}
  for l in range(num_layers):
    out[f"layers_{l}"] = {"self_attn": {p: {"a": jnp.asarray(RNG.normal(size=(d, r)), jnp.float32),
                                            "b": jnp.asarray(0 * RNG.normal(size=(r, d)) if zero_b else
                                                             RNG.normal(size=(r, d)), jnp.float32)}
                                        for p in ("q_proj", "v_proj")}}
  return out


@pytest.mark.parametrize("num_layers,k", [(6, 3), (5, 2), (4, 4)])
@pytest.mark.parametrize("learned", [True, False])
def test_effective_adapters_equal_eq4_in_numpy(num_layers, k, learned):
  r, lam = 3, 0.7
  ad = _adapters(num_layers, r)
  m = jnp.asarray(RNG.normal(size=(k, k, r, r)), jnp.float32) if learned else None
  eff = A.effective_adapters(ad, num_layers, k, lam, m)
  groups = P.layer_groups(num_layers, k)
  for l in range(num_layers):
    gk = next(g for g, (s, e) in enumerate(groups) if s <= l < e)
    pos = l - groups[gk][0]
    for proj in ("q_proj", "v_proj"):
      a_k, b_k = (np.asarray(ad[f"layers_{l}"]["self_attn"][proj][x]) for x in "ab")
      ref = a_k @ b_k  # ΔW_k = B_k A_k  (kernel orientation a b)
      for j in range(k):
        if j == gk:
          continue
        sj, ej = groups[j]
        partner = sj + pos * (ej - sj) // (groups[gk][1] - groups[gk][0])
        b_j = np.asarray(ad[f"layers_{partner}"]["self_attn"][proj]["b"])
        m_jk = np.asarray(m[j, gk]) if learned else np.eye(r)
        ref = ref + lam * a_k @ m_jk @ b_j  # + λ Align(B_j, A_k)
        np.testing.assert_allclose(np.asarray(A.align_term(jnp.asarray(a_k), jnp.asarray(b_j),
                                                           None if not learned else m[j, gk])),
                                   a_k @ m_jk @ b_j, rtol=1e-4, atol=1e-5)
      got = np.asarray(A.delta_weights(eff)[f"layers_{l}/self_attn/{proj}"])
      np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_lambda_zero_and_single_scale_are_plain_lora():
  ad = _adapters(6)
  m = jnp.asarray(RNG.normal(size=(3, 3, 3, 3)), jnp.float32)
  assert A.effective_adapters(ad, 6, 3, 0.0, m) is ad
  assert A.effective_adapters(ad, 6, 1, 0.9, None) is ad
  assert A.effective_adapters(ad, 6, 3, 0.5, m) is not ad


def test_missing_partner_is_a_one_line_error():
  ad = _adapters(4)
  del ad["layers_3"]["self_attn"]["v_proj"]
  with pytest.raises(Exception, match="pairs with layers_3/self_attn/v_proj"):
    A.effective_adapters(ad, 4, 2, 0.5)


# --- eq. 5: fusion ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("heads", [1, 2, 4])
def test_fusion_weights_and_output_match_numpy(heads):
  b, k, d = 3, 3, 8
  params = F.init_fusion(jax.random.PRNGKey(0), k, d, heads)
  params = jax.tree.map(lambda x: x * 10, params)  # non-trivial weights
  hs = RNG.normal(size=(b, k, d)).astype(np.float32)
  alpha = np.asarray(F.fusion_weights(params, jnp.asarray(hs)))
  assert alpha.shape == (b, k, heads)
  np.testing.assert_allclose(alpha.sum(1), 1.0, rtol=1e-5)
  w, q = np.asarray(params["w"]), np.asarray(params["q"])
  dk = q.shape[-1]
  e = np.einsum("bkd,kdhe,he->bkh", hs, w, q) / np.sqrt(dk)
  ref = np.exp(e - e.max(1, keepdims=True))
  ref = ref / ref.sum(1, keepdims=True)
  np.testing.assert_allclose(alpha, ref, rtol=1e-4, atol=1e-6)
  z = np.asarray(F.fuse(jnp.asarray(hs), jnp.asarray(alpha)))
  c = d // heads
  for i in range(heads):
    np.testing.assert_allclose(z[:, i * c:(i + 1) * c],
                               np.einsum("bk,bkc->bc", ref[:, :, i], hs[:, :, i * c:(i + 1) * c]), rtol=1e-4,
                               atol=1e-6)
  if heads == 1:  # eq. 5 exactly: Z = Σ_k α_k H^(s_k)
    np.testing.assert_allclose(z, np.einsum("bk,bkd->bd", ref[..., 0], hs), rtol=1e-4, atol=1e-6)


def test_mean_fusion_and_bad_heads():
  hs = jnp.asarray(RNG.normal(size=(2, 3, 6)), jnp.float32)
  np.testing.assert_allclose(np.asarray(F.fuse(hs, F.mean_weights(hs))), np.asarray(hs).mean(1), rtol=1e-5)
  with pytest.raises(Exception, match="does not divide"):
    F.init_fusion(jax.random.PRNGKey(0), 3, 6, 4)


# --- eq. 6: losses ---------------------------------------------------------------------------------------------------

def _log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_sampled_softmax_matches_numpy_with_accidental_hits():
  b, n, d, tau = 4, 3, 5, 0.5
  u, pos, neg = (RNG.normal(size=s).astype(np.float32) for s in ((b, d), (b, d), (n, d)))
  pos_ids, neg_ids = np.array([7, 3, 7, 9]), np.array([3, 1, 2])  # row 0 and 2 share an item; 3 is a hit for row 1
  got = float(L.rec_softmax(*map(jnp.asarray, (u, pos, neg, pos_ids, neg_ids)), temperature=tau))
  cand, cid = np.concatenate([pos, neg]), np.concatenate([pos_ids, neg_ids])
  ref = []
  for r in range(b):
    keep = [c for c in range(b + n) if c == r or cid[c] != pos_ids[r]]
    logits = u[r] @ cand[keep].T / tau
    ref.append(-_log_softmax(logits)[keep.index(r)])
  assert got == pytest.approx(np.mean(ref), rel=1e-5)
  got = float(L.rec_softmax(*map(jnp.asarray, (u, pos, neg, pos_ids, neg_ids)), temperature=tau,
                                in_batch=False))
  ref = []
  for r in range(b):
    keep = [c for c in range(n) if neg_ids[c] != pos_ids[r]]
    logits = np.concatenate([[u[r] @ pos[r]], u[r] @ neg[keep].T]) / tau
    ref.append(-_log_softmax(logits)[0])
  assert got == pytest.approx(np.mean(ref), rel=1e-5)


def test_bpr_matches_numpy():
  b, n, d = 3, 4, 5
  u, pos, neg = (RNG.normal(size=s).astype(np.float32) for s in ((b, d), (b, d), (n, d)))
  pos_ids, neg_ids = np.array([1, 2, 3]), np.array([2, 5, 6, 7])
  got = float(L.rec_bpr(*map(jnp.asarray, (u, pos, neg, pos_ids, neg_ids))))
  ref = []
  for r in range(b):
    diffs = [u[r] @ pos[r] - u[r] @ neg[c] for c in range(n) if neg_ids[c] != pos_ids[r]]
    ref.append(np.mean(np.log1p(np.exp(-np.array(diffs)))))
  assert got == pytest.approx(np.mean(ref), rel=1e-5)


def test_align_losses_match_numpy():
  b, k, d, tau = 4, 3, 6, 0.2
  s = RNG.normal(size=(b, k, d)).astype(np.float32)
  unit = s / np.linalg.norm(s, axis=-1, keepdims=True)
  pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
  cos = np.mean([np.mean(1 - np.sum(unit[:, i] * unit[:, j], -1)) for i, j in pairs])
  assert float(L.align_loss(jnp.asarray(s), "cosine")) == pytest.approx(cos, rel=1e-5)
  terms = []
  for i, j in pairs:
    logits = unit[:, i] @ unit[:, j].T / tau
    terms.append(0.5 * (-np.mean(np.diag(_log_softmax(logits))) - np.mean(np.diag(_log_softmax(logits.T)))))
  assert float(L.align_loss(jnp.asarray(s), "infonce", tau)) == pytest.approx(np.mean(terms), rel=1e-5)
  assert float(L.align_loss(jnp.asarray(s[:, :1]), "infonce")) == 0.0


# --- eq. 1's input: history text with segment ids --------------------------------------------------------------------

class _Tok:
  """Each character is a token (ord), enough to check concatenation and segments."""
  bos_token_id, pad_token_id, eos_token_id = 1, 0, 2

  def __call__(self, texts, add_special_tokens=False):
    one = isinstance(texts, str)
    ids = [[ord(c) for c in t] for t in ([texts] if one else texts)]
    return {"input_ids": ids[0] if one else ids}


def test_history_text_segments():
  table = T.build_item_tokens(_Tok(), ["", "ab", "cde", "f"], None, with_genres=False, max_item_tokens=3,
                              user_prefix="U", item_prefix="I")
  np.testing.assert_array_equal(table.lens, [0, 3, 3, 3])  # " ab," and " cde," cut to 3; " f,"
  enc = T.encode_histories(table, np.array([[0, 1, 3], [0, 0, 0]]), length=10)
  assert enc["input_ids"][0].tolist() == [0, 0, 1, ord("U"), ord(" "), ord("a"), ord("b"), ord(" "), ord("f"),
                                          ord(",")]
  assert enc["segment"][0].tolist() == [-1, -1, -1, -1, 1, 1, 1, 0, 0, 0]
  short = T.encode_histories(table, np.array([[1, 3]]), length=5)  # too long: the prefix stays, oldest tokens go
  assert short["input_ids"][0].tolist() == [1, ord("U"), ord(" "), ord("f"), ord(",")]
  assert enc["attention_mask"][1].tolist() == [0] * 8 + [1, 1] and (enc["segment"][1] == -1).all()
  items = T.encode_items(table, np.array([2]))
  assert items["input_ids"][0].tolist() == [1, ord("I"), ord(" "), ord("c"), ord("d")]
  assert items["segment"][0].tolist() == [-1, -1, 0, 0, 0]
