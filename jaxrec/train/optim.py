"""Optimiser construction from a stage's `optimizer` config: AdamW with warmup, then cosine or constant."""

from __future__ import annotations

import optax


def make_schedule(opt_cfg, total_steps: int) -> optax.Schedule:
  """Linear warmup 0 → lr over warmup_steps, then cosine decay to lr * end_lr_ratio at total_steps, or constant."""
  lr, warmup = float(opt_cfg.lr), int(opt_cfg.warmup_steps)
  if opt_cfg.schedule == "constant":
    if warmup == 0:
      return optax.constant_schedule(lr)
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup])
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0 if warmup else lr, peak_value=lr, warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1), end_value=lr * float(opt_cfg.get("end_lr_ratio", 0.0)))


def make_optimizer(opt_cfg, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """(optimizer, schedule): global-norm clipping (if grad_clip > 0) then AdamW(b1, b2, weight_decay)."""
  schedule = make_schedule(opt_cfg, total_steps)
  parts = []
  if float(opt_cfg.grad_clip) > 0:
    parts.append(optax.clip_by_global_norm(float(opt_cfg.grad_clip)))
  parts.append(optax.adamw(schedule, b1=float(opt_cfg.b1), b2=float(opt_cfg.b2), eps=float(opt_cfg.get("eps", 1e-8)),
                           weight_decay=float(opt_cfg.weight_decay)))
  return optax.chain(*parts), schedule
