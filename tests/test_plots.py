"""Pictures and error bars: sample grids (jaxgan/runtime/writers.py), the sweep plot and
the mean ± std summary (jaxgan/sweep/plots.py, results.py), and `python -m jaxgan.plot`
(jaxgan/cli/plot.py). A plot is checked by what its figure drew when it was saved (each
panel's points, lines, error bars and bands: `figures_drawn`) and by the PNG written
(its size, and pixels of the first series' colour)."""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import pytest
from PIL import Image

from jaxgan.cli import plot
from jaxgan.config import Config, sweep_members
from jaxgan.errors import EXIT_USAGE, WorkdirError
from jaxgan.runtime import writers
from jaxgan.sweep import plots, results

import toolkit


# matplotlib's first colour (C0, #1f77b4): the first series of every plot.
FIRST_COLOUR = (31, 119, 180)


def assert_png(path: str, figure: dict) -> None:
  """A PNG of the figure's size in which the first series is drawn (pixels of its
  colour; a blank or unfinished figure has none)."""
  with Image.open(path) as img:
    assert img.format == "PNG" and img.size == figure["size"], (path, img.size)
    pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
  assert np.sum(np.all(pixels == FIRST_COLOUR, axis=1)) >= 20, path


def figures_drawn(monkeypatch) -> list[dict]:
  """Records what every figure saved from now on drew, in saving order: its size in
  pixels, its title and, for each visible panel (keyed by its title, else its y label),
  the axis labels, its lines {label: [[x, y], ...]}, scatter points [(label,
  [[x, y], ...])], error bars {label: (points, [half-height, ...])} and filled bands
  [(y min, y max)]."""
  from matplotlib.collections import PathCollection, PolyCollection
  from matplotlib.container import ErrorbarContainer
  from matplotlib.figure import Figure
  drawn: list[dict] = []
  real_savefig = Figure.savefig

  def panel(ax) -> dict:
    bars = {}
    for c in ax.containers:
      if isinstance(c, ErrorbarContainer):
        (bar_lines,) = c.lines[2]
        half = [float(seg[1, 1] - seg[0, 1]) / 2 for seg in bar_lines.get_segments()]
        bars[c.get_label()] = (c.lines[0].get_xydata().tolist(), half)
    return {
        "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
        "lines": {l.get_label(): l.get_xydata().tolist() for l in ax.get_lines()
                  if not l.get_label().startswith("_")},
        "points": [(c.get_label(), np.asarray(c.get_offsets()).tolist())
                   for c in ax.collections if isinstance(c, PathCollection)],
        "errorbars": bars,
        "bands": [(float(c.get_paths()[0].vertices[:, 1].min()),
                   float(c.get_paths()[0].vertices[:, 1].max()))
                  for c in ax.collections if isinstance(c, PolyCollection)],
    }

  def savefig(fig, *args, **kwargs):
    width, height = fig.get_size_inches() * fig.dpi
    drawn.append({
        "size": (int(round(width)), int(round(height))),
        "title": fig._suptitle.get_text() if fig._suptitle else "",
        "panels": {ax.get_title() or ax.get_ylabel(): panel(ax)
                   for ax in fig.axes if ax.get_visible()}})
    return real_savefig(fig, *args, **kwargs)

  monkeypatch.setattr(Figure, "savefig", savefig)
  return drawn


# --------------------------------------------------------------------------- grids
def test_sample_grid_pads_like_torchvision_and_enlarges_small_images():
  images = np.full((6, 28, 28, 1), 255, np.uint8)
  grid = writers.image_grid(images, rows=2)
  # 28 px images x3 = 84 px, 2 px of 0 between and around (make_grid's defaults).
  assert writers.upscale_factor(28, 28) == 3
  assert grid.shape == (2 * 86 + 2, 3 * 86 + 2, 1)
  assert (grid[:2] == 0).all() and (grid[:, :2] == 0).all()
  assert (grid[2:86, 2:86] == 255).all() and (grid[86:88] == 0).all()
  # Nearest-neighbour enlargement: each source pixel becomes a 3x3 block.
  ramp = np.arange(28 * 28, dtype=np.uint8).reshape(1, 28, 28, 1)
  one = writers.image_grid(ramp)
  np.testing.assert_array_equal(one[2:5, 2:5, 0], np.full((3, 3), ramp[0, 0, 0, 0]))
  assert writers.image_grid(ramp, scale=1).shape == (32, 32, 1)
  assert writers.upscale_factor(64, 64) == 2 and writers.upscale_factor(100, 90) == 1


# --------------------------------------------------------------------------- sweeps
def sweep_rows():
  """lr_d x seed, member 5 diverged."""
  members = sweep_members(Config(num_steps=1, sweep=("lr_d=1e-4,1e-3", "seed=0,1,2")))
  fid = np.array([10.0, 12.0, 14.0, 20.0, 22.0, 5.0])
  final = {"eval/fid": fid, "eval/precision": np.linspace(0.2, 0.7, 6),
           "g_loss": np.ones(6)}
  return results.rank_members(members, final, "eval/fid", [-1] * 5 + [3]), members


def test_summary_gives_mean_and_std_over_seeds_per_group():
  rows, _ = sweep_rows()
  summary = results.summarise(rows, ["lr_d", "seed"])
  by = {(r["lr_d"], r["metric"]): r for r in summary}
  low, high = by[(1e-4, "eval/fid")], by[(1e-3, "eval/fid")]
  assert (low["mean"], low["std"], low["n"], low["diverged"]) == (12.0, 2.0, 3, 0)
  # Member 5 diverged: left out of the mean, counted.
  assert (high["mean"], high["n"], high["diverged"]) == (21.0, 2, 1)
  assert high["std"] == pytest.approx(math.sqrt(2.0))
  printed = results.format_mean_std(summary, ["lr_d", "seed"], "eval/fid")
  assert "mean ± std (ddof 1) over seeds" in printed
  assert "lr_d=0.0001 (3 seeds):" in printed and "lr_d=0.001 (2 seeds, 1 diverged):" in printed
  assert "eval/fid" in printed and "12 ± 2" in printed and "g_loss" not in printed


def test_summary_without_a_seed_axis_is_over_all_members(tmp_path):
  members = sweep_members(Config(num_steps=1, sweep=("lr_g=1e-4,2e-4",)))
  rows = results.rank_members(members, {"g_loss": np.array([1.0, 3.0])}, None, [-1, -1])
  summary = results.summarise(rows, ["lr_g"])
  assert [(r["metric"], r["mean"], r["std"]) for r in summary] == [
      ("g_loss", 2.0, pytest.approx(math.sqrt(2.0)))]
  assert "all members (2 members)" in results.format_mean_std(summary, ["lr_g"])
  path = results.write_summary(str(tmp_path), summary)
  assert os.path.basename(path) == results.SUMMARY_CSV
  assert open(path).read().splitlines()[0] == "metric,mean,std,n,healthy,diverged,min,max"


def test_sweep_plot_draws_each_metric_against_each_swept_value(tmp_path, monkeypatch):
  rows, _ = sweep_rows()
  metrics = results.headline_metrics(["g_loss", "eval/precision", "eval/fid"],
                                     "eval/fid")
  assert metrics == ["eval/fid", "eval/precision"]  # Quality metrics, the ranked first.
  drawn = figures_drawn(monkeypatch)
  path = str(tmp_path / results.PLOT_PNG)
  plots.save_sweep_plot(path, rows, ["lr_d", "seed"], metrics, "test sweep")
  [fig] = drawn
  assert_png(path, fig)
  assert fig["title"] == "test sweep"
  assert list(fig["panels"]) == [f"{m} vs {n}" for m in metrics for n in ("lr_d", "seed")]
  healthy = [r for r in rows if r["status"] == "ok"]  # Member 5 diverged.
  for metric in metrics:
    # Against lr_d: each healthy member at (its lr_d, its value), one series (the other
    # swept name is the seed) with the mean ± std over its seeds at each lr_d, and the
    # diverged member as a cross at its lr_d.
    p = fig["panels"][f"{metric} vs lr_d"]
    assert (p["xlabel"], p["ylabel"]) == ("lr_d (log scale)", metric)
    [(label, points), (crossed, crosses)] = p["points"]
    assert label == "members (each seed)"
    assert sorted(map(tuple, points)) == sorted((r["lr_d"], r[metric]) for r in healthy)
    assert crossed == "diverged / non-finite" and [x for x, _ in crosses] == [1e-3]
    [(means, half_heights)] = p["errorbars"].values()
    assert [x for x, _ in means] == [1e-4, 1e-3]
    for (x, mean), half in zip(means, half_heights):
      values = [r[metric] for r in healthy if r["lr_d"] == x]
      assert mean == pytest.approx(np.mean(values))
      assert half == pytest.approx(np.std(values, ddof=1))
    # Against the seed: one series per lr_d, each with its mean as a line.
    p = fig["panels"][f"{metric} vs seed"]
    series = dict(p["points"][:2])
    for lr in (1e-4, 1e-3):
      group = [r for r in healthy if r["lr_d"] == lr]
      assert series[f"lr_d={lr:g}"] == [[r["seed"], r[metric]] for r in group]
      [(label, line)] = [(k, v) for k, v in p["lines"].items()
                         if k.startswith(f"lr_d={lr:g}: mean ± std")]
      assert line[0][1] == pytest.approx(np.mean([r[metric] for r in group]))
  # One swept value, training losses only (an unevaluated sweep).
  path = str(tmp_path / "losses.png")
  plots.save_sweep_plot(path, rows, ["seed"], results.headline_metrics(["g_loss"]))
  assert_png(path, drawn[1])
  [(label, points), (crossed, crosses)] = drawn[1]["panels"]["g_loss vs seed"]["points"]
  assert sorted(map(tuple, points)) == sorted((r["seed"], r["g_loss"]) for r in healthy)
  assert [x for x, _ in crosses] == [2]


# --------------------------------------------------------------------------- jaxgan.plot
def write_metrics(workdir, records) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in records)


def training_records(member=None, tags=None):
  out = []
  for step in range(50, 501, 50):
    record = {"step": step, **({"member": member, **tags} if member is not None else {})}
    record.update(d_loss=0.5 + 0.1 * math.sin(step), g_loss=1.5 - step / 1000,
                  d_real=0.7, d_fake=0.3, steps_per_s=40.0)
    out.append(record)
    if step % 250 == 0:
      base = {"step": step, **({"member": member, **tags} if member is not None else {})}
      out.append({**base, "eval/fid": 300.0 - step / 5, "eval/kid": 10.0,
                  "eval/kid_std": 1.0, "eval/inception_score": 2 + step / 500,
                  "eval/inception_score_std": 0.1, "eval/precision": 0.3,
                  "eval/recall": 0.2, "eval/density": 0.5, "eval/coverage": 0.4,
                  "eval/modes_covered": 8.0, "eval/mode_kl": 0.3})
  return out


def test_plot_draws_losses_d_outputs_and_evaluation_of_a_run(tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  records = training_records()
  write_metrics(workdir, records)
  drawn = figures_drawn(monkeypatch)
  written = plot.draw(workdir)
  assert [os.path.basename(p) for p in written] == ["losses.png", "discriminator.png",
                                                    "eval.png"]
  for path, fig in zip(written, drawn):
    assert os.path.dirname(path) == os.path.join(workdir, "plots")
    assert_png(path, fig)

  def curve(metric):
    return [[r["step"], r[metric]] for r in records if metric in r]

  # A single run: both losses in one panel, both D outputs in another, each curve the
  # logged values at their steps.
  losses, outputs, evaluation = (fig["panels"] for fig in drawn)
  assert losses["loss"]["lines"] == {"D loss": curve("d_loss"), "G loss": curve("g_loss")}
  assert outputs["mean output of D"]["lines"] == {
      "D(x): real": curve("d_real"), "D(G(z)): generated": curve("d_fake")}
  # Evaluation: a panel per logged metric; KID and IS with their std as a band.
  assert list(evaluation) == ["FID", "KID", "Inception Score", "precision", "recall",
                              "density", "coverage", "modes covered", "mode KL"]
  assert evaluation["FID"]["lines"] == {"FID": curve("eval/fid")}
  assert evaluation["Inception Score"]["lines"] == {
      "Inception Score": curve("eval/inception_score")}
  assert evaluation["KID"]["bands"] == [(9.0, 11.0)]  # 10 ± 1 at both steps.
  assert evaluation["FID"]["bands"] == []


def test_plot_of_a_sweep_draws_a_line_per_member_and_skips_divergence_records(
    tmp_path, monkeypatch):
  workdir = str(tmp_path / "sweep")
  records = training_records(0, {"seed": 0}) + training_records(1, {"seed": 1})
  records.append({"step": 500, "member": 1, "seed": 1, "diverged": "d_loss",
                  "diverged_at": 480})
  records.append({"step": 100, "member": 0, "seed": 0, "modes_covered": 3.0,
                  "high_quality_pct": 20.0, "reverse_kl": 1.0})
  write_metrics(workdir, records)
  series, labels = plot.read_series(os.path.join(workdir, "metrics.jsonl"))
  assert labels == {0: "member 0 (seed=0)", 1: "member 1 (seed=1)"}
  assert "seed" not in series[0] and len(series[1]["d_loss"]) == 10
  drawn = figures_drawn(monkeypatch)
  written = plot.draw(workdir, str(tmp_path / "out"))
  assert sorted(os.listdir(tmp_path / "out")) == ["discriminator.png", "eval.png",
                                                  "losses.png", "modes.png"]
  for path, fig in zip(written, drawn):
    assert_png(path, fig)
  figs = dict(zip((os.path.basename(p) for p in written), drawn))

  def curve(member, metric):
    return [[r["step"], r[metric]] for r in records
            if r.get("member") == member and metric in r and "diverged" not in r]

  # A panel per metric, a line per member labelled with its swept values.
  for name, metric in (("D loss", "d_loss"), ("G loss", "g_loss"), ("FID", "eval/fid")):
    fig = figs["eval.png" if metric.startswith("eval/") else "losses.png"]
    assert fig["panels"][name]["lines"] == {labels[m]: curve(m, metric) for m in (0, 1)}
  assert figs["modes.png"]["panels"]["modes covered"]["lines"] == {
      labels[0]: [[100, 3.0]]}
def test_plot_without_metrics_is_refused(tmp_path):
  with pytest.raises(WorkdirError, match="has no metrics.jsonl"):
    plot.draw(str(tmp_path))


def test_plot_command_writes_into_workdir_plots_and_exits_2_on_bad_input(tmp_path):
  workdir = str(tmp_path / "run")
  write_metrics(workdir, training_records())
  ok = toolkit.run_command([sys.executable, "-m", "jaxgan.plot", f"--workdir={workdir}"],
                           timeout=120)
  assert ok.returncode == 0, ok.stderr[-2000:]
  assert f"wrote {workdir}/plots/eval.png" in ok.stdout
  bad = toolkit.run_command([sys.executable, "-m", "jaxgan.plot",
                             f"--workdir={tmp_path / 'none'}"], timeout=120)
  assert bad.returncode == EXIT_USAGE
  assert "jaxgan: error: --workdir=" in bad.stderr and "Traceback" not in bad.stderr
