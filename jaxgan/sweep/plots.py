"""Sweep plots drawn with Pillow (no matplotlib dependency): a metric against each swept
value, one scatter panel per swept hyperparameter."""

from __future__ import annotations

import math
from typing import Any, Sequence

from PIL import Image, ImageDraw

from jaxgan import fileio

PANEL_W, PANEL_H, MARGIN = 320, 240, 48


def log_scale(values: Sequence[float]) -> bool:
  """True when positive values span a factor of 10 or more (plot on a log axis)."""
  vals = [float(v) for v in values]
  return min(vals) > 0 and max(vals) >= 10 * min(vals)


def _scaler(lo: float, hi: float, a: float, b: float, log: bool):
  if log:
    lo, hi = math.log10(lo), math.log10(hi)
  span = hi - lo or 1.0
  return lambda v: a + ((math.log10(v) if log else v) - lo) / span * (b - a)


def save_metric_plot(path: str, rows: Sequence[dict[str, Any]], names: Sequence[str],
                     metric: str) -> None:
  """Writes a PNG with one panel per name: x = the member's value of `name`, y = its
  `metric`; non-finite metrics are drawn as red crosses on the top edge."""
  width = PANEL_W * len(names)
  img = Image.new("RGB", (width, PANEL_H), "white")
  draw = ImageDraw.Draw(img)
  ys = [r[metric] for r in rows if math.isfinite(r.get(metric, math.nan))]
  y_lo, y_hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
  if y_lo == y_hi:
    y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
  for p, name in enumerate(names):
    x0, x1 = p * PANEL_W + MARGIN, (p + 1) * PANEL_W - 12
    top, bottom = 20, PANEL_H - MARGIN + 8
    draw.rectangle([x0, top, x1, bottom], outline="black")
    xs = [float(r[name]) for r in rows]
    log = log_scale(xs)
    lo, hi = min(xs), max(xs)
    if lo == hi:
      lo, hi = (lo / 2, hi * 2) if log else (lo - 1, hi + 1)
    sx = _scaler(lo, hi, x0 + 14, x1 - 14, log)
    sy = _scaler(y_lo, y_hi, bottom - 10, top + 10, False)
    for r in rows:
      x = sx(float(r[name]))
      if math.isfinite(r.get(metric, math.nan)):
        y = sy(r[metric])
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill="navy")
      else:
        draw.line([x - 4, top, x + 4, top + 8], fill="red")
        draw.line([x - 4, top + 8, x + 4, top], fill="red")
    draw.text((x0, 4), f"{metric} vs {name}{' (log x)' if log else ''}", fill="black")
    draw.text((x0, bottom + 4), f"{lo:.3g}", fill="black")
    draw.text((x1 - 40, bottom + 4), f"{hi:.3g}", fill="black")
    draw.text((p * PANEL_W + 2, top), f"{y_hi:.3g}", fill="black")
    draw.text((p * PANEL_W + 2, bottom - 10), f"{y_lo:.3g}", fill="black")
  fileio.save_with(path, lambda tmp: img.save(tmp, format="PNG"))
