r"""Summarises toy sweeps: `python -m jaxgan.cli.toy_table RUNS_DIR`.

RUNS_DIR is one sweep's workdir (its config.json has a --sweep), or a folder of them (one
row each, named after its folder). Each row holds the members' last mode-metrics records
(the loop logs them with a "member" tag at every --sample_every step): modes covered,
% high-quality samples and the reverse KL of the modes' histogram, as mean ± standard
error over the members (std with ddof=1 / sqrt(n); the s.e. PacGAN's Table 1 reports),
the members' values, and the step. Members that diverged are left out and counted.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

METRICS = (("modes_covered", "modes covered", "{:.1f}"),
           ("high_quality_pct", "% high-quality", "{:.1f}"),
           ("reverse_kl", "reverse KL", "{:.3f}"))


def _is_sweep(workdir: str) -> bool:
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      return bool(json.load(f).get("sweep"))
  except (OSError, ValueError):
    return False


def last_member_mode_metrics(path: str) -> tuple[list[dict], int]:
  """(each healthy member's last mode-metrics record in member order, the number of
  members that diverged) of one sweep's metrics.jsonl."""
  last: dict[int, dict] = {}
  diverged: set[int] = set()
  with open(path) as f:
    for line in f:
      record = json.loads(line)
      if "member" not in record:
        continue
      if "diverged" in record:
        diverged.add(int(record["member"]))
      elif "modes_covered" in record:
        last[int(record["member"])] = record
  return [last[m] for m in sorted(last) if m not in diverged], len(diverged)


def mean_se(values: np.ndarray) -> tuple[float, float]:
  values = values[np.isfinite(values)]
  if len(values) == 0:
    return math.nan, math.nan
  se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
  return float(values.mean()), float(se)


def row(name: str, records: list[dict], diverged: int) -> str:
  cells = [name, str(len(records)) + (f" (+{diverged} diverged)" if diverged else ""),
           "/".join(map(str, sorted({r["step"] for r in records})))]
  for key, _, fmt in METRICS:
    values = np.array([float(r.get(key, math.nan)) for r in records])
    mean, se = mean_se(values)
    shown = ", ".join(fmt.format(v) for v in values)
    infinite = int(np.sum(np.isinf(values)))
    cells.append(f"{fmt.format(mean)} ± {fmt.format(se)} ({shown})"
                 + (f", {infinite} inf" if infinite and key == "reverse_kl" else ""))
  return "| " + " | ".join(cells) + " |"


def summarise(runs_dir: str) -> str:
  folders = ([runs_dir] if _is_sweep(runs_dir) else
             [os.path.join(runs_dir, n) for n in sorted(os.listdir(runs_dir))
              if _is_sweep(os.path.join(runs_dir, n))])
  header = ["run", "members", "step"] + [label + " (mean ± s.e.)"
                                         for _, label, _ in METRICS]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for folder in folders:
    path = os.path.join(folder, "metrics.jsonl")
    if os.path.isfile(path):
      records, diverged = last_member_mode_metrics(path)
      if records or diverged:
        lines.append(row(os.path.basename(os.path.normpath(folder)), records, diverged))
  return "\n".join(lines)


def run() -> None:
  if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
    print("usage: python -m jaxgan.cli.toy_table RUNS_DIR", file=sys.stderr)
    sys.exit(2)
  print(summarise(sys.argv[1]))


if __name__ == "__main__":
  run()
