"""The multi-scale LoRA recommender (seed "Intelligent Recommendation Systems Using Multi-Scale LoRA Fine-Tuning and
LLMs"), as a two-tower top-K model over a LoRA-adapted decoder. Equations (the paper's numbering):

  1. H = f_LLM(X; θ0)           the user's history text (`jaxrec.multiscale.text`) through the frozen backbone,
                                 all hidden states kept (the adapters of eq. 4 applied too unless user.adapted=False)
  2. H^(s_k) = Pool_{s_k}(H)     scale k: the top layer of layer group k, pooled over the last w_k items
                                 (`jaxrec.multiscale.pooling`); RMS-normalised per scale
  3-4. ΔW^(s_k) = B_k A_k + λ Σ_{j≠k} B_j M_jk A_k   group k's adapters coupled to the others' B
                                 (`jaxrec.multiscale.align.effective_adapters`, consumed by the decoder unchanged)
  5. Z = Σ_k α_k H^(s_k)         h-head cross-scale attention (`jaxrec.multiscale.fusion`); z = Z W_u
  6. L = L_rec(z, Y) + β L_align(u_1..u_K),  u_k = H^(s_k) W_u     (`jaxrec.multiscale.losses`)
Items: their text (title, genres) through the same adapted decoder, the last layer mean-pooled (or its last token),
v = h W_i (+ an id embedding); score(u, i) = zᵀ v, both unit-normalised when `score_norm`.

Centering (`center`, on by default): a decoder's pooled hidden states share one dominant direction (SmolLM2's first
layers: mean pairwise cosine 0.95 between ML-100K item texts, 0.87 between users). Under cosine scores that makes
zᵀv ≈ zᵀc / |c + δ_i|, an item-only term: at init 84 % of the score variance was item bias and every user got the
same top-K (Coverage@10 0.03). So, as in BERT-whitening (Su et al. 2021), the scale vectors H^(s_k) and the pooled
item vector h are centred by fixed means μ (params['center'], never trained), estimated once from the adapter-free
model on a sample of training histories and catalogue items (`fit_centers`); eqs. 2-6 then run on H - μ.

Popularity prior (`pop_prior` γ, ranking only): centring removes the accidental item-norm term, and with it the
item base rate, which on a time-ordered split carries most of the signal (ML-100K validation: most-popular NDCG@10
0.22). Trained against in-batch, i.e. popularity-sampled, negatives, zᵀv / τ estimates a likelihood ratio
log p(i | u) / p(i) + const (the log-Q argument of Yi et al. 2019), so Bayes' rule ranks by
zᵀv / τ + γ log p̂(i) with γ = 1 and p̂ the add-one smoothed item frequency of the training split (`score_all`).

Params: {'llm' (frozen backbone), 'lora', 'align': {'m'}, 'pool': {'q'}, 'fusion': {'w', 'q'}, 'head': {'user',
'item'}, 'item_embed', 'center': {'user' [K, D], 'item' [D]}}, each present only when the config uses it; stage
regexes select by these prefixes ('center' is never trainable).
Training batches (`jaxrec.train.multiscale_task`): input_ids / attention_mask / segment [B, T] (history),
pos_* [B, Ti] and neg_* [N, Ti] (item texts), pos_item [B], neg_item [N].
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxrec.errors import JaxrecError
from jaxrec.llm import lora
from jaxrec.llm import backbone
from jaxrec.llm.model import Decoder
from jaxrec.multiscale import align as A, config as C, fusion as F, losses as L, pooling as P
from jaxrec.tree import merge

Array = jax.Array


@dataclasses.dataclass(frozen=True, eq=False)
class MultiScaleRec:
  """Static pieces (decoder, hyper-parameters); every function is pure in (params, batch)."""

  decoder: Decoder
  n_items: int
  k: int
  windows: tuple[int, ...]
  layers: tuple[int, ...]
  pooling: str = "attention"
  scale_norm: bool = True
  lam: float = 0.1
  learn_m: bool = True
  fusion: str = "attention"
  heads: int = 8
  key_dim: int = 0
  proj_dim: int = 128
  score_norm: bool = True
  item_pool: str = "mean"
  item_id_embed: bool = False
  center: bool = True
  pop_prior: float = 1.0
  user_adapted: bool = True
  rec_loss: str = "softmax"
  in_batch: bool = True
  temperature: float = 0.1
  beta: float = 0.1
  align_loss: str = "infonce"
  align_temperature: float = 0.1

  @property
  def num_layers(self) -> int:
    return self.decoder.cfg.num_layers

  @property
  def hidden(self) -> int:
    return self.decoder.cfg.hidden_size

  @property
  def out_dim(self) -> int:
    return self.proj_dim or self.hidden

  def init(self, rng: Array, llm_params, lora_cfg: lora.LoraConfig) -> dict[str, Any]:
    """Full params: the backbone as given, fresh adapters (B = 0), M = I, small pooling / fusion / heads.

    One compiled init (op-by-op random draws would compile once per leaf shape); the backbone is an argument, so it
    is neither copied nor baked into the program."""
    extra = jax.jit(self._init_extra, static_argnums=2)(rng, llm_params, lora_cfg)
    return {"llm": llm_params, **extra}

  def _init_extra(self, rng: Array, llm_params, lora_cfg: lora.LoraConfig) -> dict[str, Any]:
    r = jax.random.split(rng, 6)
    params = {"lora": lora.init(llm_params, lora_cfg, r[0])}
    if self.learn_m and self.k > 1 and self.lam > 0:
      params["align"] = {"m": A.init_m(self.k, lora_cfg.rank)}
    if self.pooling == "attention":
      params["pool"] = {"q": P.init_queries(r[1], self.k, self.hidden)}
    if self.fusion == "attention":
      params["fusion"] = F.init_fusion(r[2], self.k, self.hidden, self.heads, self.key_dim)
    if self.proj_dim:
      std = 1.0 / math.sqrt(self.hidden)
      params["head"] = {"user": std * jax.random.normal(r[3], (self.hidden, self.proj_dim), jnp.float32),
                        "item": std * jax.random.normal(r[4], (self.hidden, self.proj_dim), jnp.float32)}
    if self.item_id_embed:
      params["item_embed"] = {"embedding": 0.01 * jax.random.normal(r[5], (self.n_items + 1, self.out_dim))}
    if self.center:  # zeros until `fit_centers`
      params["center"] = {"user": jnp.zeros((self.k, self.hidden), jnp.float32),
                          "item": jnp.zeros((self.hidden,), jnp.float32)}
    return params

  def fit_centers(self, params, user_batch, item_batch) -> dict[str, Any]:
    """params with 'center' set to the mean scale vectors of `user_batch` and the mean pooled item vector of
    `item_batch` (input_ids / attention_mask / segment, plus 'item'), read from the adapter-free model."""
    if not self.center:
      return params

    def means(params):
      hs = self._scales(params, user_batch, None, {})  # [B, K, D]; no adapters (B = 0 at init anyway)
      h = self._item_hidden(params, item_batch["input_ids"], item_batch["attention_mask"], item_batch["segment"],
                            None, {})  # [N, D]
      return {"user": jnp.mean(hs, 0), "item": jnp.mean(h, 0)}

    return {**params, "center": jax.jit(means)(params)}

  def adapters(self, params) -> dict[str, Any]:
    """Eq. 4: the effective adapters the decoder runs with."""
    m = params["align"]["m"] if "align" in params else None
    return A.effective_adapters(params["lora"], self.num_layers, self.k, self.lam, m)

  def _run(self, params, adapters, ids, mask, rng, hidden_states: bool):
    llm = jax.lax.stop_gradient(params["llm"])  # θ0 stays frozen whatever the stage says
    return self.decoder.apply({"params": llm, "lora": adapters}, ids, attention_mask=mask,
                              output_hidden_states=hidden_states, compute_logits=False, deterministic=rng is None,
                              rngs=None if rng is None else {"dropout": rng})

  def _head(self, params, x: Array, which: str) -> Array:
    return x @ params["head"][which] if self.proj_dim else x

  def _unit(self, x: Array) -> Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-8) if self.score_norm else x

  def _scales(self, params, batch, rng, adapters) -> Array:
    """[B, K, D] eq. 2's scale vectors, RMS-normalised when `scale_norm`, not centred."""
    out = self._run(params, adapters, batch["input_ids"], batch["attention_mask"], rng, True)
    hs = P.pool_scales(out["hidden_states"], batch["segment"], batch["attention_mask"], self.layers, self.windows,
                       self.pooling, params["pool"]["q"] if "pool" in params else None)  # [B, K, D]
    return P.rms_normalize(hs) if self.scale_norm else hs

  def _item_hidden(self, params, ids, mask, segment, rng, adapters) -> Array:
    """[N, D] pooled last-layer states of item texts, not centred."""
    h = self._run(params, adapters, ids, mask, rng, False)["last_hidden_state"]  # [N, Ti, D]
    if self.item_pool == "mean":
      return P.mean_pool(h, P.window_mask(segment, 0, mask))
    return h[:, -1].astype(jnp.float32)  # left padding: the last token is column Ti - 1

  def item_scales(self, params, ids: Array, mask: Array, segment: Array, adapters=None) -> Array:
    """[N, K, D] item texts [N, Ti] mean-pooled at each scale's layer (not centred): what the collaborative tower
    ('mscf', `jaxrec.train.text_features`) reads. adapters: None = the trained ones (eq. 4), {} = none."""
    adapters = self.adapters(params) if adapters is None else adapters
    hs = self._run(params, adapters, ids, mask, None, True)["hidden_states"]  # L + 1 × [N, Ti, D]
    m = P.window_mask(segment, 0, mask)  # [N, Ti]
    return jnp.stack([P.mean_pool(hs[layer], m) for layer in self.layers], axis=1)

  def encode_users(self, params, batch, rng: Array | None = None, adapters=None) -> dict[str, Array]:
    """{'z': [B, d] user vectors, 'scales': [B, K, d] per-scale vectors u_k, 'alpha': [B, K, h] fusion weights}."""
    adapters = (self.adapters(params) if adapters is None else adapters) if self.user_adapted else {}
    hs = self._scales(params, batch, rng, adapters)
    if "center" in params:
      hs = hs - params["center"]["user"]
    if self.fusion == "attention":
      alpha = F.fusion_weights(params["fusion"], hs)  # [B, K, h]
    else:
      alpha = F.mean_weights(hs, 1)
    z = F.fuse(hs, alpha)  # [B, D]
    return {"z": self._unit(self._head(params, z, "user")), "scales": self._head(params, hs, "user"),
            "alpha": alpha}

  def encode_items(self, params, ids: Array, mask: Array, segment: Array, items: Array, rng: Array | None = None,
                   adapters=None) -> Array:
    """Item texts [N, Ti] (+ their ids [N]) → [N, d] item vectors."""
    adapters = self.adapters(params) if adapters is None else adapters
    v = self._item_hidden(params, ids, mask, segment, rng, adapters)
    if "center" in params:
      v = v - params["center"]["item"]
    v = self._head(params, v, "item")
    if self.item_id_embed:
      v = v + jnp.take(params["item_embed"]["embedding"], items, axis=0)
    return self._unit(v)

  def loss(self, params, batch, rng: Array) -> tuple[Array, dict[str, Array]]:
    """Eq. 6 on a training batch; aux: the two terms, mean fusion weight per scale, mean positive score."""
    r_user, r_item = jax.random.split(rng)
    adapters = self.adapters(params)
    user = self.encode_users(params, batch, r_user, adapters)
    b = batch["pos_item"].shape[0]
    ids = jnp.concatenate([batch["pos_input_ids"], batch["neg_input_ids"]], 0)  # [B + N, Ti]
    mask = jnp.concatenate([batch["pos_attention_mask"], batch["neg_attention_mask"]], 0)
    seg = jnp.concatenate([batch["pos_segment"], batch["neg_segment"]], 0)
    items = jnp.concatenate([batch["pos_item"], batch["neg_item"]], 0)
    v = self.encode_items(params, ids, mask, seg, items, r_item, adapters)  # [B + N, d]
    pos, neg = v[:b], v[b:]
    if self.rec_loss == "softmax":
      rec = L.rec_softmax(user["z"], pos, neg, batch["pos_item"], batch["neg_item"], self.temperature,
                              self.in_batch)
    else:
      rec = L.rec_bpr(user["z"], pos, neg, batch["pos_item"], batch["neg_item"], self.temperature)
    al = L.align_loss(user["scales"], self.align_loss, self.align_temperature)
    aux = {"rec_loss": rec, "align_loss": al, "pos_score": jnp.mean(jnp.sum(user["z"] * pos, -1))}
    aux.update({f"alpha_{k}": jnp.mean(user["alpha"][:, k]) for k in range(self.k)})
    return rec + self.beta * al, aux

  def score_all(self, params, batch, item_table: Array, log_prior: Array | None = None) -> Array:
    """[B, n_items + 1] ranking logits zᵀv / τ (+ γ log p̂(i) given `log_prior` [I + 1]) of every item (column 0 is
    padding) from precomputed item vectors [I + 1, d]."""
    return self.rank_logits(self.encode_users(params, batch)["z"], item_table, log_prior)

  def rank_logits(self, z: Array, item_table: Array, log_prior: Array | None = None,
                  pop_prior: float | None = None) -> Array:
    """`score_all` from user vectors z [B, d]: zᵀv / τ + γ log p̂(i), γ = `pop_prior` (default: the model's)."""
    gamma = self.pop_prior if pop_prior is None else pop_prior
    logits = z @ item_table.T / self.temperature  # [B, I + 1]
    if log_prior is not None and gamma:
      logits = logits + gamma * log_prior[None, :]
    return logits


def make_loss_fn(model: MultiScaleRec):
  """`loss_fn(trainable, frozen, batch, rng) -> (loss, aux)` for `jaxrec.train.steps.make_train_step`."""

  def loss_fn(trainable, frozen, batch, rng):
    return model.loss(merge(trainable, frozen), batch, rng)

  return loss_fn


def from_config(model_cfg, llm_cfg, n_items: int) -> MultiScaleRec:
  """The static model for `config.model` over a decoder config (layers already truncated)."""
  C.validate(model_cfg)
  k = int(model_cfg.scales.num)
  if k > llm_cfg.num_layers:
    raise JaxrecError(f"config.model.scales.num: {k} scales need at least {k} decoder layers, the model keeps "
                      f"{llm_cfg.num_layers} (config.model.keep_layers)")
  decoder = backbone.decoder(model_cfg, llm_cfg)
  return MultiScaleRec(
      decoder=decoder, n_items=n_items, k=k, windows=tuple(C.windows(model_cfg)),
      layers=tuple(P.scale_layers(llm_cfg.num_layers, k, list(model_cfg.scales.layers))),
      pooling=model_cfg.scales.pooling, scale_norm=bool(model_cfg.scales.norm), lam=float(model_cfg.align.lam),
      learn_m=model_cfg.align.m == "learned", fusion=model_cfg.fusion.kind, heads=int(model_cfg.fusion.heads),
      key_dim=int(model_cfg.fusion.key_dim), proj_dim=int(model_cfg.proj_dim), score_norm=bool(model_cfg.score_norm),
      item_pool=model_cfg.item.pool, item_id_embed=bool(model_cfg.item.id_embed), center=bool(model_cfg.center),
      pop_prior=float(model_cfg.pop_prior),
      user_adapted=bool(model_cfg.user.adapted), rec_loss=model_cfg.loss.rec, in_batch=bool(model_cfg.loss.in_batch),
      temperature=float(model_cfg.loss.temperature), beta=float(model_cfg.loss.beta),
      align_loss=model_cfg.loss.align, align_temperature=float(model_cfg.loss.align_temperature))


@functools.lru_cache(maxsize=2)
def _cached_tokenizer(spec_json: str):
  return backbone.load_tokenizer(ml_collections.ConfigDict(json.loads(spec_json)))


@functools.lru_cache(maxsize=1)
def _cached_llm(spec_json: str, seed: int):
  spec = ml_collections.ConfigDict(json.loads(spec_json))
  return backbone.load_llm(spec, _cached_tokenizer(json.dumps({"tokenizer": spec.tokenizer, "llm": spec.llm})), seed)


def build(model_cfg, n_items: int, *, tokenizer=None, llm=None, seed: int = 0):
  """(model, initial params, tokenizer) for `config.model`; `llm` = (LlamaConfig, params) reuses a loaded backbone.

  The tokenizer and the backbone are cached per process (the last one), so sweeps and tests load them once."""
  C.validate(model_cfg)
  tok = tokenizer if tokenizer is not None else _cached_tokenizer(
      json.dumps({"tokenizer": model_cfg.tokenizer, "llm": model_cfg.llm}))
  if llm is None:
    spec = {k: model_cfg[k] for k in ("llm", "tokenizer", "dtype", "keep_layers")}
    spec["random_llm"] = model_cfg.random_llm.to_dict()
    llm_cfg, llm_params = _cached_llm(json.dumps(spec, sort_keys=True), seed)
  else:
    llm_cfg, llm_params = backbone.truncate_layers(*llm, int(model_cfg.keep_layers))
  model = from_config(model_cfg, llm_cfg, n_items)
  params = model.init(jax.random.fold_in(jax.random.PRNGKey(seed), 7), llm_params, backbone.lora_config(model_cfg))
  return model, params, tok
