"""The PBT-vs-random-search table of experiments/pbt_vs_random.sh:
`python experiments/pbt_table.py RUNS_DIR [STEP]`.

Reads RUNS_DIR/{pbt,random}_seed*/metrics.jsonl and prints, for each arm, the best and
the median member's value of each quality metric at STEP (default: the last step that
logged it), mean ± std (ddof 1) over the seeds, as a Markdown table. A PBT run's metrics
at a step are measured before that step's round, so a longer run's values at STEP are
those of a run of STEP steps. A member without a finite value there (diverged) counts as
the worst (a FID of +inf, zero modes), as the ranking does.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import statistics
import sys

# (column, label, higher is better)
METRICS = (("eval/fid", "FID (classifier)", False), ("modes_covered", "modes covered", True),
           ("high_quality_pct", "% high-quality", True))


def member_values(path: str, column: str, higher: bool, step: int | None) -> list[float]:
  values: dict[int, dict[int, float]] = {}  # step -> member -> value
  members = set()
  with open(path) as f:
    for line in f:
      r = json.loads(line)
      if "member" not in r:
        continue
      members.add(r["member"])
      if column in r:
        values.setdefault(r["step"], {})[r["member"]] = r[column]
  if not values:
    return []
  if step is not None and step not in values:
    return []  # A run that has not reached `step` yet.
  at = values[max(values) if step is None else step]
  worst = -math.inf if higher else math.inf
  return [at[m] if m in at and math.isfinite(at[m]) else worst for m in sorted(members)]


def mean_std(values: list[float]) -> str:
  if not values:
    return "-"
  if len(values) == 1 or not all(math.isfinite(v) for v in values):
    return " ".join(f"{v:.3g}" for v in values)  # One run, or one with no finite member.
  return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"


def main(runs: str, step: int | None = None) -> None:
  print("| arm | runs | metric | best member | median member |")
  print("|---|---|---|---|---|")
  for arm in ("pbt", "random"):
    paths = sorted(glob.glob(os.path.join(runs, f"{arm}_seed*", "metrics.jsonl")))
    for column, label, higher in METRICS:
      best, median = [], []
      for path in paths:
        values = member_values(path, column, higher, step)
        if values:
          best.append(max(values) if higher else min(values))
          median.append(statistics.median(values))
      if best:
        print(f"| {arm} | {len(best)} | {label} | {mean_std(best)} | {mean_std(median)} |")


if __name__ == "__main__":
  main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
