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

Error bars (`summarise`): each metric's mean ± std (ddof 1) over the healthy members
that share every swept value but the seed, i.e. over training seeds (one group of all
members when the seed is not swept), in WORKDIR/sweep_summary.csv and in the printed
summary. Members that diverged are left out and counted.
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
SUMMARY_CSV = "sweep_summary.csv"
PLOT_PNG = "sweep_plot.png"
SEED = "seed"
EVAL_PREFIX = "eval/"
# Ranking direction: lower is better except for these (with or without "eval/").
HIGHER_IS_BETTER = frozenset({"inception_score", "is", "d_real", "modes_covered",
                              "high_quality_pct", "parzen_ll", "classifier_accuracy",
                              "precision", "recall", "density", "coverage"})
TIE_BREAKS = {"modes_covered": "high_quality_pct"}
# Fields of a metrics record that are not metrics.
NOT_METRICS = frozenset({"step", "member", "steps_per_s", "diverged_at"})
# The metrics a summary prints and a plot draws, in this order: quality metrics when
# there are some (evaluation, then toy mode metrics), else the training losses.
EVAL_HEADLINE = ("fid", "kid", "inception_score", "precision", "recall", "density",
                 "coverage", "modes_covered", "mode_kl", "parzen_ll")
TOY_HEADLINE = ("modes_covered", "high_quality_pct", "reverse_kl")
TRAINING_HEADLINE = ("d_loss", "g_loss", "d_real", "d_fake")


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


def headline_metrics(available: Sequence[str], first: str | None = None) -> list[str]:
  """The metrics worth a line or a panel (module constants), `first` leading."""
  names = ([EVAL_PREFIX + k for k in EVAL_HEADLINE] + list(TOY_HEADLINE))
  chosen = [k for k in names if k in available] or [k for k in TRAINING_HEADLINE
                                                    if k in available]
  if first and first in available:
    chosen = [first] + [k for k in chosen if k != first]
  return chosen


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


def _write_csv(path: str, rows: list[dict[str, Any]]) -> str:
  """Writes rows as CSV (atomically; columns in first-seen order); returns the path."""
  fields: list[str] = []
  for row in rows:
    fields += [k for k in row if k not in fields]
  text = io.StringIO()
  writer = csv.DictWriter(text, fieldnames=fields, restval="")
  writer.writeheader()
  writer.writerows(rows)
  fileio.write_text(path, text.getvalue())
  return path


def write_results(workdir: str, rows: list[dict[str, Any]]) -> str:
  """Writes WORKDIR/sweep_results.csv (atomically); returns its path."""
  return _write_csv(os.path.join(workdir, RESULTS_CSV), rows)


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


def _group_names(names: Sequence[str]) -> list[str]:
  """What members of one error-bar group share: every swept value but the seed (no
  group names, i.e. one group, when the seed is not swept)."""
  return [n for n in names if n != SEED] if SEED in names else []


def summarise(rows: Sequence[dict[str, Any]], names: Sequence[str]
              ) -> list[dict[str, Any]]:
  """Mean ± std over seeds: one row per (group, metric), where a group is the members
  sharing every swept value of `names` but the seed (module docstring).

  rows: rank_members' rows. Returns [{<group's swept values>, "metric", "mean", "std"
  (ddof 1; NaN for one member), "n" (healthy members with a finite value), "healthy",
  "diverged" (members left out), "min", "max"}], groups in order of first appearance.
  """
  group_names = _group_names(names)
  fixed = set(names) | {"rank", "member", "status"}
  metrics = [k for k in (rows[0] if rows else {}) if k not in fixed]
  for row in rows:
    metrics += [k for k in row if k not in fixed and k not in metrics]
  groups: dict[tuple, list[dict]] = {}
  for row in sorted(rows, key=lambda r: r["member"]):
    groups.setdefault(tuple(row[n] for n in group_names), []).append(row)
  out = []
  for values, members in groups.items():
    healthy = [r for r in members if r["status"] == "ok"]
    for metric in metrics:
      xs = np.array([r.get(metric, math.nan) for r in healthy], np.float64)
      xs = xs[np.isfinite(xs)]
      out.append({**dict(zip(group_names, values)), "metric": metric,
                  "mean": float(xs.mean()) if len(xs) else math.nan,
                  "std": float(xs.std(ddof=1)) if len(xs) > 1 else math.nan,
                  "n": int(len(xs)), "healthy": len(healthy),
                  "diverged": len(members) - len(healthy),
                  "min": float(xs.min()) if len(xs) else math.nan,
                  "max": float(xs.max()) if len(xs) else math.nan})
  return out


def write_summary(workdir: str, summary: list[dict[str, Any]]) -> str:
  """Writes WORKDIR/sweep_summary.csv (atomically); returns its path."""
  return _write_csv(os.path.join(workdir, SUMMARY_CSV), summary)


def format_mean_std(summary: Sequence[dict[str, Any]], names: Sequence[str],
                    metric: str | None = None) -> str:
  """The printed error bars: per group, each headline metric as mean ± std (n)."""
  group_names = _group_names(names)
  available = list(dict.fromkeys(r["metric"] for r in summary))
  shown = headline_metrics(available, metric)
  over = "seeds" if SEED in names else "members"
  lines = [f"mean ± std (ddof 1) over {over}, diverged members left out:"]
  groups: dict[tuple, dict[str, dict]] = {}
  for r in summary:
    groups.setdefault(tuple(r[n] for n in group_names), {})[r["metric"]] = r
  for values, by_metric in groups.items():
    first = next(iter(by_metric.values()))
    label = ", ".join(f"{n}={v:g}" if isinstance(v, float) else f"{n}={v}"
                      for n, v in zip(group_names, values)) or "all members"
    extra = f", {first['diverged']} diverged" if first["diverged"] else ""
    lines.append(f"  {label} ({first['healthy']} {over}{extra}):")
    for m in shown:
      r = by_metric[m]
      lines.append(f"    {m:<24} {r['mean']:>10.4g} ± {r['std']:<10.3g} (n={r['n']})")
  return "\n".join(lines)
