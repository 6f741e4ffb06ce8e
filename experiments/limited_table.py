"""The limited-data table of experiments/limited_data.sh:
`python experiments/limited_table.py [RUNS_DIR] [--samples=OUT.png]` (default runs/limited).

Reads RUNS_DIR/n<size>_<population>/sweep_summary.csv (each swept setting's mean ± std
over its 5 seeds, diverged members left out and counted) and prints Markdown tables, a row
per technique and a column per training-set size: FID with its change against that size's
baseline, then precision, recall and the classes covered, on the classifier's features.
Sizes or populations not run yet are left blank. With --samples it also draws OUT.png: for
each size (a row), seed 0's last sample grid of every technique (a column), at the images'
own resolution.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SIZES = (60000, 6000, 600)
# Row -> (population, its swept setting: {hyperparameter: value}).
ROWS = {
    "baseline": ("plain", {"r1_gamma": 0.0, "lecam_weight": 0.0}),
    "DiffAugment": ("diffaug", {"lecam_weight": 0.0}),
    "R1 (γ 1)": ("plain", {"r1_gamma": 1.0, "lecam_weight": 0.0}),
    "spectral norm": ("sn", {}),
    "LeCam (λ 0.3)": ("plain", {"r1_gamma": 0.0, "lecam_weight": 0.3}),
    "R1 + LeCam": ("plain", {"r1_gamma": 1.0, "lecam_weight": 0.3}),
    "DiffAugment + LeCam": ("diffaug", {"lecam_weight": 0.3}),
    "DiffAugment + R1": ("diffaug_r1", {"lecam_weight": 0.0}),
    "DiffAugment + R1 + LeCam": ("diffaug_r1", {"lecam_weight": 0.3}),
}


def summary(path: str, setting: dict) -> dict[str, tuple[float, float, int, int]]:
  """metric -> (mean, std, healthy, diverged) of the summary's rows for `setting`."""
  out = {}
  with open(path, newline="") as f:
    for row in csv.DictReader(f):
      if all(float(row[k]) == v for k, v in setting.items()):
        out[row["metric"]] = (float(row["mean"]), float(row["std"]), int(row["healthy"]),
                              int(row["diverged"]))
  return out


def main(runs: str) -> None:
  """Prints two tables, a row per technique and a column per training-set size: FID ±
  std with its change against the size's baseline, then precision, recall and classes
  covered ± std."""
  got: dict[tuple[str, int], dict] = {}
  for size in SIZES:
    for name, (population, setting) in ROWS.items():
      path = os.path.join(runs, f"n{size}_{population}", "sweep_summary.csv")
      if os.path.exists(path) and "eval/fid" in (values := summary(path, setting)):
        got[name, size] = values
  sizes = [n for n in SIZES if any(size == n for _, size in got)]
  head = " | ".join(f"{n:,} images" for n in sizes)
  rule = "|---" * (len(sizes) + 1) + "|"
  print(f"| FID ± std (Δ vs baseline), seeds (diverged) | {head} |\n{rule}")
  for name in ROWS:
    cells = []
    for size in sizes:
      if (name, size) not in got:
        cells.append("")
        continue
      mean, std, healthy, diverged = got[name, size]["eval/fid"]
      base = got.get(("baseline", size), {}).get("eval/fid")
      delta = f" ({mean - base[0]:+.1f})" if base and name != "baseline" else ""
      seeds = f", {healthy + diverged} ({diverged})" if diverged else ""
      cells.append(f"{mean:.1f} ± {std:.1f}{delta}{seeds}")
    print(f"| {name} | {' | '.join(cells)} |")
  print(f"\n| precision / recall / classes covered (of 10), mean ± std | {head} |\n{rule}")
  for name in ROWS:
    cells = []
    for size in sizes:
      v = got.get((name, size), {})
      cells.append(" / ".join(f"{v[m][0]:.{d}f} ± {v[m][1]:.{d}f}" for m, d in (
          ("eval/precision", 2), ("eval/recall", 4), ("eval/modes_covered", 1)) if m in v))
    print(f"| {name} | {' | '.join(cells)} |")


def member_of(workdir: str, setting: dict, seed: int = 0) -> int | None:
  """The member index whose records in metrics.jsonl carry `setting` and `seed`."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      r = json.loads(line)
      if "member" in r and r.get("seed") == seed and all(
          float(r.get(k, -1)) == v for k, v in setting.items()):
        return int(r["member"])
  return None


def last_grid(workdir: str, member: int) -> str | None:
  folder = os.path.join(workdir, "samples", f"member_{member}")
  steps = [int(n[5:-4]) for n in os.listdir(folder) if n.startswith("step_")] \
      if os.path.isdir(folder) else []
  return os.path.join(folder, f"step_{max(steps)}.png") if steps else None


def draw_samples(runs: str, out: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  from PIL import Image

  from jaxgan.runtime.writers import upscale_factor
  sizes = [n for n in SIZES if any(os.path.isdir(os.path.join(runs, f"n{n}_{p}"))
                                   for p in ("plain", "diffaug", "sn", "diffaug_r1"))]
  fig, axes = plt.subplots(len(sizes), len(ROWS), squeeze=False,
                           figsize=(1.6 * len(ROWS), 1.75 * len(sizes) + 0.3))
  for i, size in enumerate(sizes):
    for j, (name, (population, setting)) in enumerate(ROWS.items()):
      ax = axes[i, j]
      ax.set_xticks([])
      ax.set_yticks([])
      workdir = os.path.join(runs, f"n{size}_{population}")
      member = member_of(workdir, setting) if os.path.isdir(workdir) else None
      grid = last_grid(workdir, member) if member is not None else None
      if grid is not None:
        image = np.asarray(Image.open(grid).convert("L"))
        scale = upscale_factor(28, 28)  # The grid's enlargement of Fashion-MNIST's tiles.
        ax.imshow(image[::scale, ::scale], cmap="gray", vmin=0, vmax=255,
                  interpolation="nearest")
      if i == 0:
        ax.set_title(name, fontsize=8)
      if j == 0:
        ax.set_ylabel(f"{size:,} images", fontsize=8)
  fig.suptitle("Seed 0 of each technique after 1,000 steps (mlp, batch 64)", fontsize=9)
  fig.tight_layout()
  fig.savefig(out, dpi=110)
  print(f"wrote {out}")


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("runs", nargs="?", default="runs/limited")
  parser.add_argument("--samples", default="", help="also draw this PNG")
  args = parser.parse_args()
  main(args.runs)
  if args.samples:
    draw_samples(args.runs, args.samples)
