"""Every bench case in a fresh process, the PyTorch loops beside it, interleaved over
rounds; one row per case of medians and ratios.

A case runs in a child process (`child_command`, the bench program: given --child=NAME,
--data_dir, --steps, --repeats, --batch_size and --profile_dir it prints the case's
measure.run_case row as its last JSON line), so its start-up time and peak RSS are a
fresh process's. The machine's float32 matmul rate is measured in this process before
the first case and after each one; the best of these is the rate (a busy moment can only
lower a measurement), so `matmul_share` (achieved GFLOP/s over that rate) is a ratio
measured on one machine at one time.

With an interpreter that imports torch, each case of TORCH_LOOPS gets its PyTorch loops
(torch_loops.py, by its path inside this package), right after the case in even rounds
and before it in odd ones, and the row gets `torch: {loop: {it_per_s, ratio (jaxgan /
PyTorch), matmul_share}}`. A population case gets `vs_single`: its member-steps/s over
the steps/s of the single run it is compared with (SINGLE), from the same round. Every
figure is the median over the rounds and every ratio the median of the rounds' ratios.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from typing import NamedTuple, Sequence

from jaxgan.benchmark.cases import LOOPS_NEEDING_DATA, SINGLE, TORCH_LOOPS, case_steps
from jaxgan.benchmark.measure import measure_matmul_gflops

# The PyTorch loops ship inside the package, so an installed jaxgan runs them too.
TORCH_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_loops.py")


def torch_problem(python: str) -> str | None:
  """None if `python` imports torch, else why not (one line)."""
  try:
    out = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                         capture_output=True, text=True, timeout=120)
  except (OSError, subprocess.TimeoutExpired) as e:
    return f"{type(e).__name__}: {e}"
  if out.returncode:
    return (out.stderr.strip().splitlines() or ["import torch failed"])[-1]
  return None


def run_torch_loop(python: str, loop: str, data_dir: str, steps: int, repeats: int,
                   batch_size: int = 0) -> dict:
  """One torch_loops.py run: its JSON line, or {"error": ...}."""
  cmd = [python, TORCH_SCRIPT, f"--loop={loop}", f"--data_dir={data_dir}",
         f"--steps={steps}", f"--repeats={repeats}",
         f"--batch_size={batch_size or 64}"]
  out = subprocess.run(cmd, capture_output=True, text=True)
  lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
  if out.returncode or not lines:
    return {"loop": loop, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
  return json.loads(lines[-1])


def run_child(child_command: Sequence[str], name: str, data_dir: str, steps: int,
              repeats: int, batch_size: int, profile_dir: str) -> dict:
  """Case `name` measured in a fresh process: its row, or {"name", "error"}."""
  cmd = [*child_command, f"--child={name}", f"--data_dir={data_dir}", f"--steps={steps}",
         f"--repeats={repeats}", f"--batch_size={batch_size}",
         f"--profile_dir={os.path.abspath(profile_dir) if profile_dir else ''}"]
  env = dict(os.environ)
  if profile_dir:  # XLA:CPU emits per-kernel trace events only with this flag.
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_cpu_enable_xprof_traceme=true").strip()
  out = subprocess.run(cmd, capture_output=True, text=True, env=env)
  lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
  if out.returncode or not lines:
    return {"name": name, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
  return json.loads(lines[-1])


class Report(NamedTuple):
  rows: list[dict]            # One per case, in the order given (combine's rows).
  matmul_gflop_s: float       # The best of matmul_rates.
  matmul_rates: list[float]   # Before the first case and after each one.


def run(child_command: Sequence[str], cases: Sequence[str], *, data_dir: str = "",
        steps: int = 0, repeats: int = 5, rounds: int = 1, batch_size: int = 0,
        profile_dir: str = "", torch_python: str = "") -> Report:
  """Measures `cases` (names of CASES) `rounds` times, each in a child process, with
  their PyTorch loops when `torch_python` imports torch (torch_problem says whether);
  the mlp loops read Fashion-MNIST and are left out without `data_dir`. steps: per timed
  repeat, 0 for each case's own (case_steps)."""
  # As many timed repeats of the matmul rate as of a case, times 6 (30 at the default
  # 5): a quick run (repeats=2) measures the rate quickly too.
  matmul_repeats = 6 * repeats
  matmul_rates = [measure_matmul_gflops(repeats=matmul_repeats)]
  measured_rounds = []
  for r in range(rounds):
    measured = {}
    for name in cases:
      loops = [l for l in TORCH_LOOPS.get(name, ()) if torch_python
               and (data_dir or l not in LOOPS_NEEDING_DATA)]
      case_args = (name, data_dir, case_steps(name, steps), repeats, batch_size)
      # Interleaved: jaxgan first in even rounds, PyTorch first in odd ones.
      torch_runs = {}
      jax_first = r % 2 == 0
      if jax_first:
        row = run_child(child_command, *case_args, profile_dir)
      for loop in loops:
        torch_runs[loop] = run_torch_loop(torch_python, loop, data_dir,
                                          case_steps(name, steps), repeats, batch_size)
      if not jax_first:
        row = run_child(child_command, *case_args, profile_dir)
      if torch_runs:
        row["torch_runs"] = torch_runs
      measured[name] = row
      matmul_rates.append(measure_matmul_gflops(repeats=matmul_repeats))
    measured_rounds.append(measured)
  matmul = max(matmul_rates)
  rows = combine(measured_rounds, matmul)
  for row in rows:
    if "error" not in row:
      row["matmul_gflop_s_measured"] = [round(x, 1) for x in matmul_rates]
      row["rounds"] = rounds
  return Report(rows, matmul, matmul_rates)


def _median(values):
  return round(statistics.median(values), 3) if values else None


def combine(rounds: list[dict], matmul: float) -> list[dict]:
  """One row per case from the rounds' measurements: `rounds[r][case]` is the case's
  child row with its PyTorch results under "torch_runs" ({loop: torch_loops JSON}).
  Figures are medians over the rounds; each ratio (jaxgan/PyTorch, population/single run)
  is the median of the ratios of the rounds, so each compares measurements minutes
  apart. Shares of the matmul rate use jaxgan's FLOP count for both (the same maths)."""
  rows = []
  for name in rounds[0]:
    runs = [r[name] for r in rounds if "error" not in r[name]]
    if not runs:
      rows.append(rounds[-1][name])
      continue
    row = dict(runs[-1])
    row.pop("torch_runs", None)
    row["steps_per_s"] = _median([r["steps_per_s"] for r in runs])
    row["steps_per_s_rounds"] = [r["steps_per_s"] for r in runs]
    row["gflop_s"] = round(row["steps_per_s"] * row["gflop_per_step"], 1)
    row["matmul_gflop_s"] = round(matmul, 1)
    row["matmul_share"] = round(row["gflop_s"] / matmul, 3)
    row["ceiling_steps_per_s"] = round(matmul / max(row["gflop_per_step"], 1e-12), 1)
    torch_rows = {}
    for loop in TORCH_LOOPS.get(name, ()):
      pairs = [(r["steps_per_s"], r["torch_runs"][loop]) for r in runs
               if loop in r.get("torch_runs", {})]
      ok = [(j, t) for j, t in pairs if "error" not in t]
      if pairs and not ok:
        torch_rows[loop] = {"error": pairs[-1][1]["error"]}
      elif ok:
        it = _median([t["it_per_s"] for _, t in ok])
        torch_rows[loop] = {
            "it_per_s": it, "it_per_s_rounds": [t["it_per_s"] for _, t in ok],
            "ratio": _median([j / t["it_per_s"] for j, t in ok]),
            "matmul_share": round(it * row["gflop_per_step"] / matmul, 3),
            **{k: ok[-1][1][k] for k in ("torch", "threads", "pipeline", "memory_format")
               if k in ok[-1][1]}}
    if torch_rows:
      row["torch"] = torch_rows
    single = SINGLE.get(name)
    if single:
      pairs = [(r[name], r[single]) for r in rounds
               if single in r and "error" not in r[name] and "error" not in r[single]]
      if pairs:
        row["vs_single"] = {"case": single,
                            "ratio": _median([p["steps_per_s"] / s["steps_per_s"]
                                              for p, s in pairs])}
    rows.append(row)
  return rows


def _ratios_text(row: dict) -> str:
  parts = []
  for loop, t in row.get("torch", {}).items():
    parts.append(f"{loop}: error" if "error" in t
                 else f"torch {loop} {t['it_per_s']:.2f} it/s -> {t['ratio']:.2f}x")
  if "vs_single" in row:
    parts.append(f"{row['vs_single']['ratio']:.2f}x {row['vs_single']['case']}")
  return "; ".join(parts)


TABLE_COLUMNS = ("name", "batch_size", "steps_per_call", "steps_per_s",
                 "ceiling_steps_per_s", "matmul_share", "gflop_s", "compile_s",
                 "startup_s", "peak_rss_mb")


def table(report: Report) -> str:
  """The report as text: one line per case, its ratios, and the matmul rate."""
  lines = [" ".join(f"{c:>12}" for c in TABLE_COLUMNS) + "  ratios"]
  for row in report.rows:
    if "error" in row:
      lines.append(f"{row['name']:>12} error: {row['error']}")
    else:
      lines.append(" ".join(f"{str(row[c]):>12}" for c in TABLE_COLUMNS) + "  "
                   + _ratios_text(row))
  lines.append(
      f"float32 matmul rate (mlp layer shapes, batch 64): {report.matmul_gflop_s:.1f} "
      f"GFLOP/s, the best of {', '.join(f'{x:.1f}' for x in report.matmul_rates)} "
      "(before the first case and after each)")
  return "\n".join(lines)
