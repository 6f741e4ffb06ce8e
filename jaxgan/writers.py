"""The one metrics writer (metrics.jsonl + TensorBoard) and sample-grid PNGs."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import numpy as np
from PIL import Image


class MetricsWriter:
  """Appends `{"step": N, name: value, ...}` lines to WORKDIR/metrics.jsonl and writes
  the same scalars to TensorBoard event files in WORKDIR."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, "metrics.jsonl")
    from tensorboardX import SummaryWriter  # No TensorFlow needed.
    self._tb = SummaryWriter(logdir=workdir)

  def write(self, step: int, scalars: Mapping[str, float],
            tags: Mapping[str, Any] | None = None) -> None:
    """tags: optional fields stored as is in the JSON record, before the scalars (e.g. a
    sweep member's index and hyperparameters); with a "member" tag, TensorBoard names
    are prefixed "member_<i>/"."""
    tags = dict(tags or {})
    record: dict[str, Any] = {"step": int(step), **tags}
    record.update({k: float(v) for k, v in scalars.items()})
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    prefix = f"member_{tags['member']}/" if "member" in tags else ""
    for name, value in scalars.items():
      self._tb.add_scalar(prefix + name, float(value), global_step=int(step))
    self._tb.flush()

  def close(self) -> None:
    self._tb.close()


def image_grid(images_uint8: np.ndarray, rows: int | None = None,
               pad: int = 2) -> np.ndarray:
  """[N, H, W, C] uint8 -> one [rows*(H+pad)+pad, cols*(W+pad)+pad, C] uint8 grid."""
  n, h, w, c = images_uint8.shape
  rows = rows or int(math.ceil(math.sqrt(n)))
  cols = int(math.ceil(n / rows))
  grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    y, x = pad + r * (h + pad), pad + col * (w + pad)
    grid[y:y + h, x:x + w] = images_uint8[i]
  return grid


def save_png(path: str, image_uint8: np.ndarray) -> None:
  """Writes [H, W, 1|3] uint8 to `path` atomically (tmp file, then rename)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  array = image_uint8[..., 0] if image_uint8.shape[-1] == 1 else image_uint8
  tmp = path + ".tmp"
  Image.fromarray(array).save(tmp, format="PNG")
  os.replace(tmp, path)
