r"""Draws a run's curves from its metrics.jsonl: `python -m jaxgan.plot --workdir=W`.

Writes into W/plots/ (or --out):
  losses.png         d_loss and g_loss over steps
  discriminator.png  D(x) and D(G(z)) (the `d_real`, `d_fake` means of D's output)
  eval.png           each evaluation metric over steps (--eval_every runs): FID, KID
                     (± its subset std), IS (± its split std), precision, recall,
                     density, coverage, modes, mode KL, Parzen
  modes.png          the toy mode metrics (modes covered, % high-quality, reverse KL)
  pbt.png            a population-based-training sweep (its pbt_lineage.csv): each
                     member's ranking metric at each round and each explored
                     hyperparameter over steps (log scale), a marker where a member
                     took another's state
each only when the run logged its metrics. A sweep's workdir gets one line per member,
labelled with its swept values. Records of diverged members' last steps (the
`diverged_at` records) are left out. Needs matplotlib only (no jax): it runs beside a
training run on the same workdir.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Sequence

from absl import flags

from jaxgan import fileio
from jaxgan.cli import common
from jaxgan.errors import ConfigError, WorkdirError
from jaxgan.sweep import lineage

FLAGS = flags.FLAGS
PANEL_W, PANEL_H, DPI = 5.0, 3.2, 100
# (file, title, [(metric, label, std metric or None)]): one figure each.
FIGURES = (
    ("losses.png", "losses", [("d_loss", "D loss", None), ("g_loss", "G loss", None)]),
    ("discriminator.png", "D(x) and D(G(z))",
     [("d_real", "D(x): real", None), ("d_fake", "D(G(z)): generated", None)]),
    ("eval.png", "evaluation", [
        ("eval/fid", "FID", None), ("eval/kid", "KID", "eval/kid_std"),
        ("eval/inception_score", "Inception Score", "eval/inception_score_std"),
        ("eval/precision", "precision", None), ("eval/recall", "recall", None),
        ("eval/density", "density", None), ("eval/coverage", "coverage", None),
        ("eval/modes_covered", "modes covered", None), ("eval/mode_kl", "mode KL", None),
        ("eval/parzen_ll", "Parzen log-likelihood (nats)", "eval/parzen_se")]),
    ("modes.png", "toy mode metrics", [
        ("modes_covered", "modes covered", None),
        ("high_quality_pct", "% high-quality samples", None),
        ("reverse_kl", "reverse KL", None)]),
)
# Figures whose curves share one panel in a single run, and that panel's y label.
SHARED_PANEL = {"losses.png": "loss", "discriminator.png": "mean output of D"}
TAG_FIELDS = {"step", "member", "diverged", "diverged_at", "steps_per_s"}


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "The run (or sweep) whose metrics.jsonl to draw.")
  flags.DEFINE_string("out", None, "Folder for the PNG files (default: WORKDIR/plots).")


def read_series(path: str) -> tuple[dict[Any, dict[str, list[tuple[int, float]]]],
                                    dict[Any, str]]:
  """metrics.jsonl -> ({member (None: a single run): {metric: [(step, value)]}},
  {member: its label, e.g. 'member 1 (seed=1)'})."""
  series: dict[Any, dict[str, list[tuple[int, float]]]] = {}
  labels: dict[Any, str] = {}
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except ValueError:
        continue  # A line cut short by a kill.
      if "diverged" in record or "step" not in record:
        continue
      member = record.get("member")
      numbers = {k: v for k, v in record.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)}
      if member is not None and member not in labels:
        tags = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in record.items() if k not in TAG_FIELDS and k in numbers
                and not _is_metric(k)]
        labels[member] = f"member {member}" + (f" ({', '.join(tags)})" if tags else "")
      per = series.setdefault(member, {})
      for k, v in numbers.items():
        if _is_metric(k):
          per.setdefault(k, []).append((int(record["step"]), float(v)))
  return series, labels


_KNOWN = {m for _, _, panels in FIGURES for m, _, s in panels} | {
    s for _, _, panels in FIGURES for _, _, s in panels if s}


def _is_metric(key: str) -> bool:
  """Logged metrics (not tags such as a sweep's swept values)."""
  return key in _KNOWN or key.startswith("eval/") or key in ("gp", "steps_per_s")


def draw(workdir: str, out: str | None = None) -> list[str]:
  """Draws the figures of the module docstring; returns the paths written."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.isfile(path):
    raise WorkdirError(f"--workdir={workdir!r} has no metrics.jsonl: expected the workdir "
                       "of a training run (python -m jaxgan.main --workdir=...).")
  series, labels = read_series(path)
  if not series:
    raise WorkdirError(f"{path} holds no metrics records yet: nothing to draw.")
  out = out or os.path.join(workdir, "plots")
  os.makedirs(out, exist_ok=True)
  written = []
  name = os.path.basename(os.path.normpath(workdir))
  for filename, title, panels in FIGURES:
    panels = [p for p in panels if any(p[0] in s for s in series.values())]
    if panels:
      target = os.path.join(out, filename)
      shared = SHARED_PANEL.get(filename) if list(series) == [None] else None
      _figure(target, f"{name}: {title}", panels, series, labels, shared)
      written.append(target)
  rows = lineage.read_rows(workdir)
  if rows:
    target = os.path.join(out, "pbt.png")
    _pbt_figure(target, f"{name}: population-based training", rows)
    written.append(target)
  return written


def _pbt_figure(path: str, title: str, rows: Sequence[dict[str, str]]) -> None:
  """The lineage's panels: the metric each member had at each round, then each explored
  hyperparameter as a step function from step 0 (its value before the first round).
  A triangle marks a member that took another's state there (filled: it had diverged)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  names = lineage.hparam_names(list(rows[0]))
  members = sorted({int(r["member"]) for r in rows})
  metric = rows[0]["metric_name"]
  n = 1 + len(names)
  cols = min(n, 3)
  fig, axes = plt.subplots(int(math.ceil(n / cols)), cols,
                           figsize=(PANEL_W * cols, PANEL_H * math.ceil(n / cols) + 0.6),
                           dpi=DPI, squeeze=False)
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for m in members:
    mine = sorted((r for r in rows if int(r["member"]) == m), key=lambda r: int(r["step"]))
    color = colors[m % len(colors)]
    steps = [int(r["step"]) for r in mine]
    moved = [r for r in mine if r["action"] != lineage.KEEP]
    ax = axes.flat[0]
    ax.plot(steps, [float(r["metric"]) for r in mine], "o-", ms=3, lw=1.2, color=color,
            label=f"member {m}")
    for i, name in enumerate(names, start=1):
      ax = axes.flat[i]
      xs = [0] + steps
      ys = [float(mine[0][f"{name}_before"])] + [float(r[f"{name}_after"]) for r in mine]
      ax.step(xs, ys, where="post", lw=1.2, color=color)
      for r in moved:
        filled = r["action"] == lineage.REPLACE_DIVERGED
        ax.plot(int(r["step"]), float(r[f"{name}_after"]), "v", ms=6, color=color,
                mfc=color if filled else "none")
  axes.flat[0].set_title(f"{metric} at each round", fontsize=10)
  axes.flat[0].set_ylabel(metric)
  for i, name in enumerate(names, start=1):
    axes.flat[i].set_title(f"{name} (triangle: took another member's state)",
                           fontsize=10)
    axes.flat[i].set_ylabel(name)
    axes.flat[i].set_yscale("log")
  for ax in list(axes.flat)[:n]:
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
  axes.flat[0].legend(fontsize=7, loc="best", ncol=2)
  _finish(fig, axes, n, title, path)


def _figure(path: str, title: str, panels: Sequence[tuple[str, str, str | None]],
            series: dict, labels: dict, shared: str | None) -> None:
  """One panel per metric (a line per member), or with `shared` (a y label) every
  metric in one panel."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  n = 1 if shared else len(panels)
  cols = min(n, 2 if len(panels) <= 4 else 3)
  rows = int(math.ceil(n / cols))
  fig, axes = plt.subplots(rows, cols, figsize=(PANEL_W * cols, PANEL_H * rows + 0.5),
                           dpi=DPI, squeeze=False)
  for i, (metric, label, std_metric) in enumerate(panels):
    ax = axes.flat[0 if shared else i]
    band_labelled = False
    for member, per in series.items():
      points = sorted(per.get(metric, []))
      if not points:
        continue
      steps = [s for s, _ in points]
      values = [v for _, v in points]
      line_label = label if shared else (labels.get(member, "run") if member is not None
                                         else label)
      marker = "o" if len(points) < 30 else None
      (line,) = ax.plot(steps, values, marker=marker, ms=3, lw=1.2, label=line_label)
      std = dict(per.get(std_metric, [])) if std_metric else {}
      if std:
        lo = [v - std.get(s, 0.0) for s, v in points]
        hi = [v + std.get(s, 0.0) for s, v in points]
        ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.15, lw=0,
                        label=None if band_labelled else
                        f"± {std_metric.removeprefix('eval/')}")
        band_labelled = True
    ax.set_xlabel("step")
    ax.set_ylabel(shared or label)
    if not shared:
      ax.set_title(label, fontsize=10)
    ax.grid(True, alpha=0.3)
    if len(ax.get_legend_handles_labels()[0]) > 1:
      ax.legend(fontsize=7, loc="best")
  _finish(fig, axes, n, title, path)


def _finish(fig, axes, n: int, title: str, path: str) -> None:
  """Hides the grid's unused panels (those after the first n), titles the figure and
  writes it to `path` as a PNG (atomically)."""
  import matplotlib.pyplot as plt
  for ax in list(axes.flat)[n:]:
    ax.set_visible(False)
  fig.suptitle(title, fontsize=11)
  fig.tight_layout()
  fileio.save_with(path, lambda tmp: fig.savefig(tmp, format="png"))
  plt.close(fig)


def main(argv: list[str]) -> None:
  common.run_reporting_errors(lambda: _plot(argv))


def _plot(argv: list[str]) -> None:
  common.no_arguments(argv)
  if not FLAGS.workdir:
    raise ConfigError("--workdir is required: the run whose metrics.jsonl to draw "
                      "(e.g. --workdir=runs/fm).")
  for path in draw(FLAGS.workdir, FLAGS.out):
    print(f"wrote {path}")


def run() -> None:
  common.run_program(define_flags, main)


if __name__ == "__main__":
  run()
