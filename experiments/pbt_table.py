"""The PBT-vs-random-search table of experiments/pbt_vs_random.sh:
`python experiments/pbt_table.py RUNS_DIR`.

Reads RUNS_DIR/{pbt,random}_seed*/sweep_results.csv (each member's final logged metrics)
and prints, for each arm, the best and the median member's final value of each quality
metric, mean ± std (ddof 1) over the seeds, as a Markdown table. Diverged members count
as the worst (a FID of +inf, zero modes), as the ranking does.
"""

from __future__ import annotations

import csv
import glob
import math
import os
import statistics
import sys

# (column, label, higher is better)
METRICS = (("eval/fid", "FID (classifier)", False), ("modes_covered", "modes covered", True),
           ("high_quality_pct", "% high-quality", True))


def member_values(path: str, column: str, higher: bool) -> list[float]:
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows or column not in rows[0]:
    return []
  worst = -math.inf if higher else math.inf
  out = []
  for r in rows:
    v = float(r[column]) if r[column] not in ("", "nan") else math.nan
    out.append(v if r["status"] == "ok" and math.isfinite(v) else worst)
  return out


def mean_std(values: list[float]) -> str:
  if not values:
    return "-"
  if len(values) == 1:
    return f"{values[0]:.3g}"
  return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"


def main(runs: str) -> None:
  print(f"| arm | runs | metric | best member | median member |")
  print("|---|---|---|---|---|")
  for arm in ("pbt", "random"):
    paths = sorted(glob.glob(os.path.join(runs, f"{arm}_seed*", "sweep_results.csv")))
    for column, label, higher in METRICS:
      best, median = [], []
      for path in paths:
        values = member_values(path, column, higher)
        if values:
          best.append(max(values) if higher else min(values))
          median.append(statistics.median(values))
      if best:
        print(f"| {arm} | {len(best)} | {label} | {mean_std(best)} | {mean_std(median)} |")


if __name__ == "__main__":
  main(sys.argv[1])
