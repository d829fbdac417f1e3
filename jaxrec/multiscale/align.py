"""Eq. 3-4, multi-scale LoRA as a pure map from adapters to effective adapters.

Eq. 3 is plain LoRA, `ΔW = B A` with r ≪ d, the backbone frozen (`jaxrec.llm.lora`). Eq. 4 couples the scales:

  ΔW^(s_k) = B^(s_k) A^(s_k) + λ Σ_{j≠k} Align(B^(s_j), A^(s_k)),   Align(B_j, A_k) = B_j M_jk A_k,  M_jk ∈ R^{r×r}

Scale k's adapters are those of the k-th layer group (`jaxrec.multiscale.pooling.layer_groups`). Factoring A_k out,

  ΔW_k = (B_k + λ Σ_{j≠k} B_j M_jk) A_k

is standard LoRA with an effective B, so `effective_adapters` rewrites only the `b` leaves and the decoder consumes
the result unchanged. In jaxrec's orientation (kernels stored (in, out): ΔWᵀ = a b, a = Aᵀ [in, r], b = Bᵀ [r, out])
the same reads

  b_eff(l) = b(l) + λ Σ_{j≠k} m[j, k] b(pair_j(l)),    m[j, k] = M_jkᵀ  [r, r]

Pairing: the adapter at layer l (group k, relative position p = l - start_k, size n_k) is coupled with the adapter
of the SAME projection (q_proj with q_proj, …) at layer start_j + floor(p · n_j / n_k) of group j: equal groups pair
position by position, unequal ones proportionally. M is one r×r matrix per ordered pair of groups, shared by every
layer and projection of the pair ([K, K, r, r]; the diagonal is unused), learned from the identity, or fixed to the
identity (`m=None`). λ = 0, or K = 1, return the adapters themselves: exactly plain (per-group) LoRA.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.errors import JaxrecError
from jaxrec.llm import lora
from jaxrec.multiscale.pooling import layer_groups

Array = jax.Array
_LAYER = re.compile(r"layers_(\d+)/(.+)")


def group_of_layers(num_layers: int, k: int) -> np.ndarray:
  """[L] int: the group of each layer."""
  out = np.zeros(num_layers, np.int64)
  for g, (a, b) in enumerate(layer_groups(num_layers, k)):
    out[a:b] = g
  return out


def paired_layer(layer: int, j: int, groups: list[tuple[int, int]]) -> int:
  """The layer of group j coupled with `layer` (same relative position, proportionally for unequal groups)."""
  k = next(g for g, (a, b) in enumerate(groups) if a <= layer < b)
  (ak, bk), (aj, bj) = groups[k], groups[j]
  return aj + (layer - ak) * (bj - aj) // (bk - ak)


def init_m(k: int, rank: int) -> Array:
  """[K, K, r, r] identities: at init the coupling passes the other groups' B through unchanged."""
  return jnp.broadcast_to(jnp.eye(rank, dtype=jnp.float32), (k, k, rank, rank))


def align_term(a_k: Array, b_j: Array, m_jk: Array | None) -> Array:
  """Align(B_j, A_k) in kernel orientation, [in, out]: a_k m_jk b_j (m = identity when None)."""
  return a_k @ b_j if m_jk is None else a_k @ m_jk @ b_j


def effective_adapters(adapters: dict[str, Any], num_layers: int, k: int, lam: float,
                       m: Array | None = None) -> dict[str, Any]:
  """Adapters whose `b` leaves are b + λ Σ_{j≠k} m[j, k] b(pair_j) (eq. 4); the `a` leaves are unchanged.

  Args:
    adapters: LoRA pytree {'layers_i': {...: {'a': [in, r], 'b': [r, out]}}} over a decoder of `num_layers` layers.
    num_layers: L, the decoder's layer count (groups are cut from it).
    k: number of scales K (layer groups).
    lam: λ, a Python float (static: λ = 0 skips the coupling altogether).
    m: [K, K, r, r] learned coupling, or None for identities.
  """
  if k == 1 or lam == 0.0:
    return adapters
  groups = layer_groups(num_layers, k)
  group = group_of_layers(num_layers, k)
  mods = lora.flatten_modules(adapters)
  out = {}
  for path, ab in mods.items():
    match = _LAYER.fullmatch(path)
    if match is None:
      raise JaxrecError(f"multi-scale LoRA: adapter {path!r} is not inside a decoder layer (layers_<i>/...)")
    layer, rest = int(match[1]), match[2]
    gk = int(group[layer])
    b = ab["b"].astype(jnp.float32)  # [r, out]
    coupled = jnp.zeros_like(b)
    for j in range(k):
      if j == gk:
        continue
      partner = f"layers_{paired_layer(layer, j, groups)}/{rest}"
      if partner not in mods:
        raise JaxrecError(f"multi-scale LoRA: {path} pairs with {partner}, which has no adapter; target the same "
                          f"projections in every layer (config.model.lora.targets)")
      b_j = mods[partner]["b"].astype(jnp.float32)  # [r, out]
      coupled = coupled + (b_j if m is None else m[j, gk] @ b_j)
    out[path + "/a"] = ab["a"]
    out[path + "/b"] = (b + lam * coupled).astype(ab["b"].dtype)
  return lora.unflatten(out)


def delta_weights(adapters: dict[str, Any], scale: float = 1.0) -> dict[str, Array]:
  """{module path: scale · a b [in, out]}: the kernel updates a set of adapters makes (for checks and merging)."""
  return {p: scale * (ab["a"] @ ab["b"]) for p, ab in lora.flatten_modules(adapters).items()}
