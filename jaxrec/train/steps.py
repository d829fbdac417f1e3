"""Pure, jitted train and eval steps. They take only arrays / pytrees; models are closed over as static code."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax


FINITE = "finite"  # the train step's divergence flag (not logged)



def make_train_step(loss_fn: Callable, optimizer: optax.GradientTransformation):
  """Returns jitted `(trainable, frozen, opt_state, batch, rng) -> (trainable, opt_state, metrics)` for
  `loss_fn(trainable, frozen, batch, rng) -> (scalar loss, aux dict of scalars)`.

  `trainable` and `opt_state` are donated (updated in place, no copy); `frozen` is neither differentiated nor
  copied, so a large frozen backbone costs nothing per step. metrics: loss, grad_norm, the aux scalars and FINITE
  (loss and gradient norm finite).
  """

  def step(trainable, frozen, opt_state, batch, rng):
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, frozen, batch, rng)
    updates, opt_state = optimizer.update(grads, opt_state, trainable)
    trainable = optax.apply_updates(trainable, updates)
    grad_norm = optax.tree.norm(grads)
    # One flag the loop checks every step (a step late, so dispatch never waits); the parameters themselves are
    # checked only where they are kept (`all_finite` before a save or an evaluation), not on every step.
    metrics = {"loss": loss, "grad_norm": grad_norm, FINITE: jnp.isfinite(loss) & jnp.isfinite(grad_norm), **aux}
    return trainable, opt_state, metrics

  return jax.jit(step, donate_argnums=(0, 2))


@jax.jit
def all_finite(tree):
  """Whether every leaf of `tree` is free of NaN / inf (one scalar bool)."""
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))
