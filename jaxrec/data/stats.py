"""Per-split summary figures (the table `launch/prepare_data.py` prints)."""

from __future__ import annotations

import numpy as np

from jaxrec.data import schema

COLUMNS = ("split", "rows", "users", "items", "pos_rate", "warm", "hist_len", "tok_mean", "tok_p95")


def split_stats(split: schema.Split, token_lengths: np.ndarray | None = None) -> dict:
  """rows, distinct users (0 = no id is not counted) and items, positive rate, warm share, mean history length and
  prompt tokens (mean / p95) when `token_lengths` [N] is given."""
  users = np.unique(split.user)
  out = dict(rows=len(split), users=int((users > 0).sum()), items=int(np.unique(split.item).size),
             pos_rate=float(split.label.mean()), warm=float(split.warm.mean()),
             hist_len=float(split.history_len.mean()))
  if token_lengths is not None:
    out.update(tok_mean=float(np.mean(token_lengths)), tok_p95=float(np.percentile(token_lengths, 95)))
  return out


def format_table(rows: dict[str, dict]) -> str:
  """A fixed-width text table, one line per split."""
  lines = [f"{'split':<12}{'rows':>9}{'users':>8}{'items':>8}{'pos_rate':>10}{'warm':>7}{'hist_len':>10}"
           f"{'tok_mean':>10}{'tok_p95':>9}"]
  for name, s in rows.items():
    tok = (f"{s['tok_mean']:>10.1f}{s['tok_p95']:>9.0f}" if "tok_mean" in s else f"{'n/a':>10}{'n/a':>9}")
    lines.append(f"{name:<12}{s['rows']:>9,}{s['users']:>8,}{s['items']:>8,}{s['pos_rate']:>10.3f}"
                 f"{s['warm']:>7.3f}{s['hist_len']:>10.1f}{tok}")
  return "\n".join(lines)
