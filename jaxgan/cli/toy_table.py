r"""Summarises toy runs: `python -m jaxgan.cli.toy_table RUNS_DIR`.

Reads RUNS_DIR/<variant>_seed<N>/metrics.jsonl, takes each run's last mode-metrics line
(modes_covered, high_quality_pct) and prints a Markdown table of mean ± std over seeds
(std with ddof=1) per variant. RUNS_DIR may also be one sweep's workdir (its config.json
has a --sweep): then the rows are its members' last mode-metrics records, one row for
the whole population (the loop logs them with a "member" tag).
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys

import numpy as np


def last_mode_metrics(path: str) -> dict | None:
  last = None
  with open(path) as f:
    for line in f:
      record = json.loads(line)
      if "modes_covered" in record:
        last = record
  return last


def last_member_mode_metrics(path: str) -> list[dict]:
  """Each sweep member's last mode-metrics record of one metrics.jsonl, member order."""
  last: dict[int, dict] = {}
  with open(path) as f:
    for line in f:
      record = json.loads(line)
      if "modes_covered" in record and "member" in record:
        last[int(record["member"])] = record
  return [last[m] for m in sorted(last)]


def _is_sweep(workdir: str) -> bool:
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      return bool(json.load(f).get("sweep"))
  except (OSError, ValueError):
    return False


def summarise(runs_dir: str) -> str:
  groups: dict[str, list[dict]] = collections.defaultdict(list)
  if _is_sweep(runs_dir):
    name = os.path.basename(os.path.normpath(runs_dir))
    groups[f"{name} (sweep)"] = last_member_mode_metrics(
        os.path.join(runs_dir, "metrics.jsonl"))
  for name in sorted(os.listdir(runs_dir)):
    match = re.fullmatch(r"(.+)_seed(\d+)", name)
    path = os.path.join(runs_dir, name, "metrics.jsonl")
    if match and os.path.isfile(path):
      record = last_mode_metrics(path)
      if record is not None:
        groups[match.group(1)].append(record)
  lines = ["| variant | seeds | step | modes covered | % high-quality |",
           "|---|---|---|---|---|"]
  for variant, records in groups.items():
    if not records:
      continue
    modes = np.array([r["modes_covered"] for r in records])
    hq = np.array([r["high_quality_pct"] for r in records])
    ddof = 1 if len(records) > 1 else 0
    steps = sorted({r["step"] for r in records})
    lines.append(f"| {variant} | {len(records)} | {'/'.join(map(str, steps))} | "
                 f"{modes.mean():.1f} ± {modes.std(ddof=ddof):.1f} "
                 f"({', '.join(f'{m:.0f}' for m in modes)}) | "
                 f"{hq.mean():.1f} ± {hq.std(ddof=ddof):.1f} |")
  return "\n".join(lines)


def run() -> None:
  if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
    print("usage: python -m jaxgan.cli.toy_table RUNS_DIR", file=sys.stderr)
    sys.exit(2)
  print(summarise(sys.argv[1]))


if __name__ == "__main__":
  run()
