r"""Benchmark of the real training step: steps/s, compile and start-up time, memory, FLOP/s,
and the same models' PyTorch loops measured in the same run.

    python -m jaxgan.bench                       # table of the default cases
    python -m jaxgan.bench --json                # one JSON object per case
    python -m jaxgan.bench --data_dir=/usr/share/datasets/fashion-mnist --cases=mlp
    python -m jaxgan.bench --data_dir=/usr/share/datasets/fashion-mnist \
        --torch=../torch-venv/bin/python --rounds=2    # + PyTorch, interleaved

Flags -> jaxgan.benchmark: each case runs in a fresh process of this program
(--child=CASE, jaxgan.benchmark.measure), so `startup_s` (process start to the first
completed step) and `peak_rss_mb` are the figures a user sees; jaxgan.benchmark.compare
runs the cases and the PyTorch loops (jaxgan/benchmark/torch_loops.py) interleaved over
--rounds and computes the medians and ratios; its docstring says what each figure is.

--profile_dir=DIR also traces each case's compilation and 20 steps with jax.profiler
(Perfetto traces; XLA:CPU's per-kernel events are switched on for the child process)
and writes DIR/<case>/summary.txt: XLA compile phases, and kernel time per step by
kernel kind, next to the wall time per step. The profile runs after the timed repeats,
so it does not change the figures.
"""

from __future__ import annotations

import json
import sys

from absl import flags

from jaxgan.benchmark.cases import CASES, LOOPS_NEEDING_DATA, TORCH_LOOPS, case_steps
from jaxgan.cli import common


def define_flags() -> None:
  """The program's flags (defined when it runs, so importing the module defines nothing)."""
  flags.DEFINE_list("cases", ["mlp", "mlp_scan10", "paper_mlp", "dcgan28", "dcgan32",
                              "pop8", "pop32", "ring", "ring_pop8", "ring_pop32",
                              "ring_pacgan", "ring_pacgan_pop8"],
                    "Cases to run; see jaxgan.benchmark.cases.CASES (unknown ones are "
                    "listed in the error).")
  flags.DEFINE_string("torch", "", "A Python interpreter that imports torch (torch is not "
                      "a jaxgan requirement): the PyTorch loops of "
                      "jaxgan/benchmark/torch_loops.py (cases.TORCH_LOOPS) run next to "
                      "their jaxgan cases, interleaved, and the ratios jaxgan/PyTorch are "
                      "printed. Skipped, with a note, where it cannot import torch.")
  flags.DEFINE_integer("rounds", 1, "Run every case (and its PyTorch loops) this many "
                       "times, alternating which goes first; figures are medians over "
                       "the rounds, ratios the median of each round's ratio.")
  flags.DEFINE_bool("json", False, "Print one JSON object per case instead of a table.")
  flags.DEFINE_string("data_dir", "", "IDX folder for real data; default synthetic uint8.")
  flags.DEFINE_integer("steps", 0, "Train steps per timed repeat (0: each case's own, "
                       "cases.STEPS; PyTorch loops run as many as their case).")
  flags.DEFINE_integer("repeats", 5, "Timed repeats; steps_per_s is their median (the "
                       "matmul rate's: 6x as many).")
  flags.DEFINE_integer("batch_size", 0, "Override every case's batch size (0 = keep).")
  flags.DEFINE_string("profile_dir", "", "If set: per case, a trace of the train step's "
                      "XLA compilation and of 20 steps (per-kernel events) under "
                      "PROFILE_DIR/<case>/, and a summary.txt of where the time goes.")
  flags.DEFINE_string("child", "", "Internal: run one case in this process.")


FLAGS = flags.FLAGS


def _refuse(message: str) -> None:
  from jaxgan.errors import EXIT_USAGE
  print(f"jaxgan.bench: error: {message}", file=sys.stderr)
  sys.exit(EXIT_USAGE)


def main(argv):
  del argv
  from jaxgan.errors import JaxganError
  if FLAGS.child:
    from jaxgan.benchmark import measure
    try:
      print(json.dumps(measure.run_case(FLAGS.child, FLAGS.data_dir,
                                        case_steps(FLAGS.child, FLAGS.steps),
                                        FLAGS.repeats, FLAGS.batch_size,
                                        FLAGS.profile_dir)))
    except JaxganError as e:
      print(json.dumps({"name": FLAGS.child, "error": str(e)}))
    return
  unknown = [c for c in FLAGS.cases if c not in CASES]
  if unknown:
    _refuse(f"--cases: unknown {unknown}; expected some of {sorted(CASES)}.")
  for name in ("repeats", "rounds"):
    if FLAGS[name].value < 1:
      _refuse(f"--{name}={FLAGS[name].value}: expected an integer >= 1.")
  from jaxgan.benchmark import compare  # Imports jax: after the flags are checked.
  torch_python = FLAGS.torch
  if torch_python:
    problem = compare.torch_problem(torch_python)
    if problem:
      print(f"jaxgan.bench: --torch={torch_python} cannot import torch ({problem}); "
            "the PyTorch loops are skipped.", file=sys.stderr)
      torch_python = ""
    elif any(l in LOOPS_NEEDING_DATA for c in FLAGS.cases
             for l in TORCH_LOOPS.get(c, ())) and not FLAGS.data_dir:
      print("jaxgan.bench: the PyTorch mlp loops read Fashion-MNIST: they need "
            "--data_dir; skipped.", file=sys.stderr)
  report = compare.run(
      [sys.executable, "-m", "jaxgan.bench"], FLAGS.cases, data_dir=FLAGS.data_dir,
      steps=FLAGS.steps, repeats=FLAGS.repeats, rounds=FLAGS.rounds,
      batch_size=FLAGS.batch_size, profile_dir=FLAGS.profile_dir,
      torch_python=torch_python)
  if FLAGS.json:
    for row in report.rows:
      print(json.dumps(row), flush=True)
  else:
    print(compare.table(report))
  if any("error" in r for r in report.rows):
    sys.exit(1)


def run() -> None:
  common.run_program(define_flags, main)


if __name__ == "__main__":
  run()
