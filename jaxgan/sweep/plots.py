"""Sweep plots (matplotlib): each metric against each swept value.

One panel per (metric, swept hyperparameter): x = the member's value of the
hyperparameter (log axis when positive values span 10x or more), y = its final metric.
Members that share every other swept value but the seed are one series (one colour, in
the legend); when the seed is swept and x is another hyperparameter, each x also gets
the series' mean ± std over seeds (ddof 1, as sweep_summary.csv); on the seed's own
panels the mean is a dashed line and ± std a band. Members that diverged are red crosses
on the panel's top edge, non-finite values likewise.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from jaxgan import fileio

SEED = "seed"
PANEL_W, PANEL_H = 4.2, 3.1  # Inches per panel (at DPI: 420 x 310 px).
DPI = 100
MAX_COLUMNS = 3
SUPTITLE_H = 0.4  # Inches above the panels for the figure's title.


def log_scale(values: Sequence[float]) -> bool:
  """True when positive values span a factor of 10 or more (plot on a log axis)."""
  vals = [float(v) for v in values]
  return min(vals) > 0 and max(vals) >= 10 * min(vals)


def _label(names: Sequence[str], values: Sequence[Any]) -> str:
  return ", ".join(f"{n}={v:g}" if isinstance(v, float) else f"{n}={v}"
                   for n, v in zip(names, values))


def _finite(row: dict, metric: str) -> bool:
  value = row.get(metric, math.nan)
  return row.get("status", "ok") == "ok" and isinstance(value, (int, float)) and \
      math.isfinite(value)


def _panel(ax, rows: Sequence[dict[str, Any]], names: Sequence[str], name: str,
           metric: str, colours) -> None:
  others = [n for n in names if n not in (name, SEED)]
  series: dict[tuple, list[dict]] = {}
  for r in rows:
    series.setdefault(tuple(r[n] for n in others), []).append(r)
  seeds = SEED in names and name != SEED
  for i, (values, members) in enumerate(series.items()):
    colour = colours[i % len(colours)]
    label = _label(others, values) or "members"
    good = sorted((r for r in members if _finite(r, metric)), key=lambda r: r[name])
    xs = [float(r[name]) for r in good]
    ys = [float(r[metric]) for r in good]
    ax.scatter(xs, ys, s=22, color=colour, alpha=0.55 if seeds else 0.9,
               label=label + (" (each seed)" if seeds else ""), zorder=3)
    if seeds and good:  # Mean ± std over seeds at each x.
      grouped: dict[float, list[float]] = {}
      for x, y in zip(xs, ys):
        grouped.setdefault(x, []).append(y)
      gx = sorted(grouped)
      mean = [float(np.mean(grouped[x])) for x in gx]
      std = [float(np.std(grouped[x], ddof=1)) if len(grouped[x]) > 1 else 0.0
             for x in gx]
      ax.errorbar(gx, mean, yerr=std, color=colour, capsize=3, lw=1.2, marker="_",
                  ms=10, label=f"{label}: mean ± std over seeds", zorder=4)
    elif name == SEED and len(ys) > 1:
      mean, std = float(np.mean(ys)), float(np.std(ys, ddof=1))
      ax.axhline(mean, color=colour, ls="--", lw=1,
                 label=f"{label}: mean ± std {mean:.4g} ± {std:.3g}")
      ax.axhspan(mean - std, mean + std, color=colour, alpha=0.12, lw=0)
    elif len(xs) > 1:
      ax.plot(xs, ys, color=colour, lw=0.8, alpha=0.6)
  bad = [float(r[name]) for r in rows if not _finite(r, metric)]
  if bad:
    ax.scatter(bad, [1.0] * len(bad), marker="x", color="red", s=40, clip_on=False,
               transform=ax.get_xaxis_transform(), label="diverged / non-finite",
               zorder=5)
  xs_all = [float(r[name]) for r in rows]
  if log_scale(xs_all):
    ax.set_xscale("log")
  if (name == SEED or all(v.is_integer() for v in xs_all)) and len(set(xs_all)) <= 12:
    ax.set_xticks(sorted(set(xs_all)))  # Integer values (seeds): one tick each.
  elif not log_scale(xs_all) and len(set(xs_all)) <= 6:
    # A few swept values on a linear axis: a tick at each, written as in the flag (the
    # default ticks of 1e-4..4e-4 are 0.00010, 0.00015, ... and run into each other).
    ticks = sorted(set(xs_all))
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
  ax.set_xlabel(name + (" (log scale)" if log_scale(xs_all) else ""))
  ax.set_ylabel(metric)
  ax.set_title(f"{metric} vs {name}", fontsize=10)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=7, loc="best")


def save_sweep_plot(path: str, rows: Sequence[dict[str, Any]], names: Sequence[str],
                    metrics: Sequence[str], title: str = "") -> None:
  """Writes one PNG with a panel per (metric, swept name) (module docstring).

  rows: results.rank_members' rows; names: the swept hyperparameters; metrics: the
  metrics to draw (e.g. results.headline_metrics), each a key of the rows.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  panels = [(m, n) for m in metrics for n in names]
  cols = min(MAX_COLUMNS, len(panels))
  nrows = int(math.ceil(len(panels) / cols))
  height = PANEL_H * nrows + SUPTITLE_H
  fig, axes = plt.subplots(nrows, cols, figsize=(PANEL_W * cols, height), dpi=DPI,
                           squeeze=False)
  colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for ax, (metric, name) in zip(axes.flat, panels):
    _panel(ax, rows, names, name, metric, colours)
  for ax in list(axes.flat)[len(panels):]:
    ax.set_visible(False)
  if title:
    fig.suptitle(title, fontsize=11)
  # The panels below the suptitle's band: tight_layout alone lets it overlap the first
  # row's titles.
  fig.tight_layout(rect=(0, 0, 1, 1 - SUPTITLE_H / height))
  fileio.save_with(path, lambda tmp: fig.savefig(tmp, format="png"))
  plt.close(fig)
