"""A population's results: each member's final metrics, ranked, as a CSV and a summary.

The final metrics are read back from the run's metrics.jsonl (each member's last value
of every metric), so a resumed run, or one with no step left to train, ranks exactly
what was logged.

Ranking (`rank_members`):
  * members that diverged (their state went NaN/Inf: status `diverged@<step>`) come
    after every healthy member, whatever the metric;
  * healthy members are sorted by the ranking metric (lower is better except
    HIGHER_IS_BETTER), non-finite values last; ties go to the next metric of
    TIE_BREAKS, then to the member index;
  * the default metric never rewards a broken or collapsed run: `eval/fid` when the run
    was evaluated; on toy data `modes_covered` (ties: `high_quality_pct`); otherwise
    there is no quality metric and the table is not ranked (rank left empty), rather
    than ranked by a loss.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any, Sequence

import numpy as np

from jaxgan import fileio
from jaxgan.config import Member

RESULTS_CSV = "sweep_results.csv"
PLOT_PNG = "sweep_plot.png"
EVAL_PREFIX = "eval/"
# Ranking direction: lower is better except for these (with or without "eval/").
HIGHER_IS_BETTER = frozenset({"inception_score", "is", "d_real", "modes_covered",
                              "high_quality_pct", "parzen_ll", "classifier_accuracy"})
TIE_BREAKS = {"modes_covered": "high_quality_pct"}
# Fields of a metrics record that are not metrics.
NOT_METRICS = frozenset({"step", "member", "steps_per_s", "diverged_at"})


def higher_is_better(metric: str) -> bool:
  return metric.removeprefix(EVAL_PREFIX) in HIGHER_IS_BETTER


def read_final_metrics(path: str, num_members: int,
                       exclude: Sequence[str] = ()) -> dict[str, np.ndarray]:
  """Each member's last logged value of every numeric metric in metrics.jsonl ->
  {name: [P]} (NaN where a member never logged it). exclude: record fields that are
  not metrics (the swept hyperparameters, stored as tags)."""
  last: dict[int, dict] = {}
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        record = json.loads(line)
        if "member" in record:
          last.setdefault(int(record["member"]), {}).update(record)
  names = set()
  for record in last.values():
    names |= {k for k, v in record.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
  names -= NOT_METRICS | set(exclude)
  return {k: np.array([float(last.get(i, {}).get(k, math.nan))
                       for i in range(num_members)], np.float64)
          for k in sorted(names)}


def resolve_metric(requested: str, available: Sequence[str]) -> str | None:
  """The ranking metric: --sweep_metric (an evaluation metric may be named without its
  "eval/" prefix), or the default of the module docstring; None: do not rank."""
  if requested:
    if requested not in available and EVAL_PREFIX + requested in available:
      return EVAL_PREFIX + requested
    return requested
  for default in (EVAL_PREFIX + "fid", "modes_covered"):
    if default in available:
      return default
  return None


def member_status(diverged_at: int) -> str:
  return "ok" if diverged_at < 0 else f"diverged@{diverged_at}"


def rank_members(members: Sequence[Member], final: dict[str, np.ndarray],
                 metric: str | None, diverged_at: Sequence[int]) -> list[dict[str, Any]]:
  """Rows {rank, member, <hparams>, status, <metric>, <other metrics>}, best first.

  final: metric name -> [P] values; diverged_at: [P] (-1: healthy). With metric None
  the rows keep member order (healthy first) and rank is empty.
  """
  others = sorted(k for k in final if k != metric)
  rows = []
  for m in members:
    row: dict[str, Any] = {"member": m.index, **m.hparams,
                           "status": member_status(int(diverged_at[m.index]))}
    for k in ([metric] if metric in final else []) + others:
      row[k] = float(final[k][m.index])
    rows.append(row)

  def value_key(row: dict, name: str) -> tuple[bool, float]:
    value = row.get(name, math.nan)
    sign = -1.0 if higher_is_better(name) else 1.0
    return (not math.isfinite(value), sign * value if math.isfinite(value) else 0.0)

  def key(row: dict) -> tuple:
    healthy = row["status"] == "ok"
    if metric is None:
      return (not healthy, row["member"])
    keys = [value_key(row, metric)]
    if metric.removeprefix(EVAL_PREFIX) in TIE_BREAKS:
      keys.append(value_key(row, TIE_BREAKS[metric.removeprefix(EVAL_PREFIX)]))
    return (not healthy, *keys, row["member"])

  rows.sort(key=key)
  return [{"rank": r + 1 if metric is not None else "", **row}
          for r, row in enumerate(rows)]


def write_results(workdir: str, rows: list[dict[str, Any]]) -> str:
  """Writes WORKDIR/sweep_results.csv (atomically); returns its path."""
  path = os.path.join(workdir, RESULTS_CSV)
  fields: list[str] = []
  for row in rows:
    fields += [k for k in row if k not in fields]
  text = io.StringIO()
  writer = csv.DictWriter(text, fieldnames=fields, restval="")
  writer.writeheader()
  writer.writerows(rows)
  fileio.write_text(path, text.getvalue())
  return path


def format_summary(rows: list[dict[str, Any]], names: Sequence[str],
                   metric: str | None) -> str:
  header = ["rank", "member", *names, "status"] + ([metric] if metric else [])
  lines = ["  ".join(f"{h:>12}" for h in header)]
  for row in rows:
    cells = []
    for h in header:
      v = row.get(h, "")
      cells.append(f"{v:>12.4g}" if isinstance(v, float) else f"{v!s:>12}")
    lines.append("  ".join(cells))
  return "\n".join(lines)
