"""What the loop writes into a workdir: metrics (metrics.jsonl + TensorBoard), sample
grids and toy scatter plots. Every file goes through `jaxgan.fileio` (atomic) but the two
logs, which are appended to; a write refused for lack of space or permission raises
jaxgan.errors.WriteError naming the file, whichever it is."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import numpy as np
from PIL import Image

from jaxgan import fileio
from jaxgan.data.toy import ToyProblem
from jaxgan.runtime import tb_events


class MetricsWriter:
  """Appends `{"step": N, name: value, ...}` lines to WORKDIR/metrics.jsonl and writes
  the same scalars to TensorBoard event files in WORKDIR."""

  def __init__(self, workdir: str, resume_step: int | None = None):
    """resume_step: the step the run restarts from (0 for a fresh start). Records with a
    larger step were written after that checkpoint by a run that died; the replay
    writes them again, so they are dropped here (metrics.jsonl) and purged from
    TensorBoard's view (a SessionLog.START at resume_step + 1)."""
    self.path = os.path.join(workdir, "metrics.jsonl")
    if resume_step is not None:
      drop_records_after(self.path, resume_step)
    with fileio.writing_to(workdir, "the TensorBoard event file"):
      self._tb = tb_events.EventFileWriter(
          workdir, purge_step=None if resume_step is None else resume_step + 1)

  def write(self, step: int, scalars: Mapping[str, float],
            tags: Mapping[str, Any] | None = None) -> None:
    """tags: optional fields stored as is in the JSON record, before the scalars (e.g. a
    sweep member's index and hyperparameters); with a "member" tag, TensorBoard names
    are prefixed "member_<i>/"."""
    tags = dict(tags or {})
    record: dict[str, Any] = {"step": int(step), **tags}
    record.update({k: float(v) for k, v in scalars.items()})
    with fileio.writing_to(self.path, f"the metrics of step {int(step)}"):
      with open(self.path, "a") as f:
        f.write(json.dumps(record) + "\n")
    prefix = f"member_{tags['member']}/" if "member" in tags else ""
    with fileio.writing_to(self._tb.path, f"the TensorBoard scalars of step {int(step)}"):
      self._tb.add_scalars(int(step),
                           {prefix + k: float(v) for k, v in scalars.items()})
      self._tb.flush()

  def close(self) -> None:
    with fileio.writing_to(self._tb.path, "the TensorBoard event file"):
      self._tb.close()


def drop_records_after(path: str, step: int) -> int:
  """Rewrites the metrics.jsonl at `path` without records whose step is > `step` and
  without unparseable lines (a line cut short by a kill); atomic (tmp file, rename).
  Returns the number of lines dropped; a missing file is left missing."""
  try:
    with open(path) as f:
      lines = f.readlines()
  except FileNotFoundError:
    return 0
  kept = []
  for line in lines:
    try:
      record = json.loads(line)
      keep = line.endswith("\n") and int(record["step"]) <= step
    except (ValueError, TypeError, KeyError):
      keep = False
    if keep:
      kept.append(line)
  if len(kept) != len(lines):
    fileio.write_text(path, "".join(kept), fsync=True)
  return len(lines) - len(kept)


# Sample grids as torchvision's save_image draws them (make_grid: padding 2, pad value 0,
# between and around the images), each image first enlarged by an integer factor
# (nearest neighbour: pixels stay square and sharp) so its side is at least READABLE_SIDE
# pixels: 28 px images x3 -> 84 px.
GRID_PADDING = 2
GRID_PAD_VALUE = 0
READABLE_SIDE = 84


def upscale_factor(height: int, width: int, side: int = READABLE_SIDE) -> int:
  """The smallest integer factor that makes the larger side at least `side` pixels."""
  return max(1, -(-side // max(height, width)))


def image_grid(images_uint8: np.ndarray, rows: int | None = None,
               pad: int = GRID_PADDING, scale: int | None = None) -> np.ndarray:
  """[N, H, W, C] uint8 -> one grid [rows*(sH+pad)+pad, cols*(sW+pad)+pad, C] uint8 of
  `rows` rows (default: about square), each image enlarged `scale` times (default:
  upscale_factor), separated and framed by `pad` pixels of GRID_PAD_VALUE."""
  n, h, w, c = images_uint8.shape
  scale = scale or upscale_factor(h, w)
  if scale > 1:
    images_uint8 = np.repeat(np.repeat(images_uint8, scale, axis=1), scale, axis=2)
    h, w = h * scale, w * scale
  rows = rows or int(math.ceil(math.sqrt(n)))
  cols = int(math.ceil(n / rows))
  grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), GRID_PAD_VALUE,
                 np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    y, x = pad + r * (h + pad), pad + col * (w + pad)
    grid[y:y + h, x:x + w] = images_uint8[i]
  return grid


def save_png(path: str, image_uint8: np.ndarray) -> None:
  """Writes [H, W, 1|3] uint8 to `path` atomically (tmp file, then rename)."""
  array = image_uint8[..., 0] if image_uint8.shape[-1] == 1 else image_uint8
  fileio.save_with(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


def save_toy_scatter(path: str, problem: ToyProblem, samples: np.ndarray,
            title: str = "") -> None:
  """Draws G's samples over the modes (2-D), or their histogram over p_data (1-D)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  samples = np.asarray(samples, np.float64).reshape(len(samples), -1)
  fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
  if problem.dim == 1:
    lo = float(problem.centres.min() - 4 * problem.std - 1)
    hi = float(problem.centres.max() + 4 * problem.std + 1)
    xs = np.linspace(lo, hi, 400)[:, None]
    ax.plot(xs[:, 0], problem.density(xs), "k-", label="p_data")
    ax.hist(samples[:, 0], bins=60, range=(lo, hi), density=True, color="g",
            alpha=0.5, label="G samples")
    ax.legend(loc="upper right", fontsize=8)
  else:
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:green", alpha=0.4,
               label="G samples")
    ax.scatter(problem.centres[:, 0], problem.centres[:, 1], s=30, c="k", marker="x",
               label="modes")
    span = float(np.abs(problem.centres).max() + 1.5)
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect("equal")
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fileio.save_with(path, fig.savefig)
  plt.close(fig)
