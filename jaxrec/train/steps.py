"""Pure, jitted train and eval steps. They take only arrays / pytrees; models are closed over as static code."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxrec.train.partition import combine

FINITE = "finite"  # the train step's divergence flag (not logged)

# loss_fn(trainable, frozen, batch, rng) -> (scalar loss, aux dict of scalars)
LossFn = Callable
# score_fn(params, batch) -> [B] scores
ScoreFn = Callable


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation):
  """Returns jitted `(trainable, frozen, opt_state, batch, rng) -> (trainable, opt_state, metrics)`.

  `trainable` and `opt_state` are donated (updated in place, no copy); `frozen` is neither differentiated nor
  copied, so a large frozen backbone costs nothing per step. metrics: loss, grad_norm, the aux scalars and FINITE
  (loss, gradient norm and every updated trainable leaf finite).
  """

  def step(trainable, frozen, opt_state, batch, rng):
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, frozen, batch, rng)
    updates, opt_state = optimizer.update(grads, opt_state, trainable)
    trainable = optax.apply_updates(trainable, updates)
    grad_norm = optax.tree.norm(grads)
    # One flag the loop checks every step (a step late, so dispatch never waits): a non-finite loss, gradient or
    # updated leaf means the stage diverged, and nothing after it may be checkpointed.
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    for leaf in jax.tree.leaves(trainable):
      finite &= jnp.all(jnp.isfinite(leaf))
    metrics = {"loss": loss, "grad_norm": grad_norm, FINITE: finite, **aux}
    return trainable, opt_state, metrics

  return jax.jit(step, donate_argnums=(0, 2))


def make_eval_step(score_fn: ScoreFn):
  """Returns jitted `(trainable, frozen, batch) -> scores` with score_fn(combine(trainable, frozen), batch)."""

  def step(trainable, frozen, batch):
    return score_fn(combine(trainable, frozen), batch)

  return jax.jit(step)


def params_loss(loss_fn_on_params: Callable) -> LossFn:
  """Adapts `loss(params, batch, rng)` on full params to the `(trainable, frozen, batch, rng)` signature."""

  def loss_fn(trainable, frozen, batch, rng):
    return loss_fn_on_params(combine(trainable, frozen), batch, rng)

  return loss_fn

