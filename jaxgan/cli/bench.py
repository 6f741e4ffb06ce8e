r"""Benchmark of the real training step: steps/s, compile and start-up time, memory, FLOP/s,
and the same models' PyTorch loops measured in the same run.

    python -m jaxgan.bench                       # table of the default cases
    python -m jaxgan.bench --json                # one JSON object per case
    python -m jaxgan.bench --data_dir=/usr/share/datasets/fashion-mnist --cases=mlp
    python -m jaxgan.bench --data_dir=/usr/share/datasets/fashion-mnist \
        --torch=../torch-venv/bin/python --rounds=2    # + PyTorch, interleaved

Each case runs in a fresh Python process, so `startup_s` (process start to the first
completed step, data loading and compilation included) and `peak_rss_mb` are the
figures a user sees. The step timed is the one the training loop runs (the trainee's
`StepFunctions`, jaxgan.runtime). The machine's float32 matmul rate is measured in the same run, on the matmul
shapes of the `mlp` model's forward and backward passes, so `matmul_share` (achieved
GFLOP/s over that rate) is a ratio measured on one machine at one time. The rate is
measured before the first case and after each one, and the best of these is used.
FLOPs per step come from XLA's cost analysis of the compiled step.

--torch=PYTHON (an interpreter that imports torch; torch is not a jaxgan requirement)
runs benchmarks/torch_loops.py next to the cases of TORCH_LOOPS: PyTorch-GAN gan.py's
loop as published and a tuned one beside `mlp`, the DCGAN layer shapes beside `dcgan28`
and `dcgan32`; each loop right after its case (before it in odd rounds), and the row
gets `torch: {loop: {it_per_s, ratio (jaxgan / PyTorch), matmul_share}}`. A population
case gets `vs_single`: its member-steps/s over the steps/s of the single run it is
compared with (SINGLE), from the same round. With --rounds=N every figure is the median
over N rounds and every ratio the median of the rounds' ratios.

--profile_dir=DIR also traces each case's compilation and 20 steps with jax.profiler
(Perfetto traces; XLA:CPU's per-kernel events are switched on for the child process)
and writes DIR/<case>/summary.txt: XLA compile phases, and kernel time per step by
kernel kind, next to the wall time per step. The profile runs after the timed repeats,
so it does not change the figures.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags
import numpy as np


def define_flags() -> None:
  """The program's flags (defined when it runs, so importing the module defines nothing)."""
  flags.DEFINE_list("cases", ["mlp", "mlp_scan10", "paper_mlp", "dcgan28", "dcgan32",
                              "pop8", "pop32", "ring", "ring_pop8", "ring_pop32",
                              "ring_pacgan", "ring_pacgan_pop8"],
                    "Cases to run; see CASES (unknown ones are listed in the error).")
  flags.DEFINE_string("torch", "", "A Python interpreter that imports torch (torch is not "
                      "a jaxgan requirement): the PyTorch loops of benchmarks/torch_loops.py"
                      " (TORCH_LOOPS) run next to their jaxgan cases, interleaved, and the "
                      "ratios jaxgan/PyTorch are printed. Skipped, with a note, where it "
                      "cannot import torch.")
  flags.DEFINE_integer("rounds", 1, "Run every case (and its PyTorch loops) this many "
                       "times, alternating which goes first; figures are medians over "
                       "the rounds, ratios the median of each round's ratio.")
  flags.DEFINE_bool("json", False, "Print one JSON object per case instead of a table.")
  flags.DEFINE_string("data_dir", "", "IDX folder for real data; default synthetic uint8.")
  flags.DEFINE_integer("steps", 0, "Train steps per timed repeat (0: each case's own, "
                       "STEPS; PyTorch loops run as many as their case).")
  flags.DEFINE_integer("repeats", 5, "Timed repeats; steps_per_s is their median (the "
                       "matmul rate's: 6x as many).")
  flags.DEFINE_integer("batch_size", 0, "Override every case's batch size (0 = keep).")
  flags.DEFINE_string("profile_dir", "", "If set: per case, a trace of the train step's "
                      "XLA compilation and of 20 steps (per-kernel events) under "
                      "PROFILE_DIR/<case>/, and a summary.txt of where the time goes.")
  flags.DEFINE_string("child", "", "Internal: run one case in this process.")


FLAGS = flags.FLAGS

# PacGAN's ring protocol (experiments/ring_vanilla.flags) with the toy_mlp G and D (2 x 128
# ReLU, the unrolled-GAN/VEEGAN mixture size), 10 steps per dispatch; RING_PACGAN: the
# protocol's own pacgan_mlp (G 4 x 400 + BatchNorm, D 3 maxout 200 x 5).
RING = dict(dataset="toy_ring8", model="toy_mlp", latent_dim=2, noise="normal",
            loss="non_saturating", update_order="simultaneous", batch_size=100,
            optimizer="adam", lr_g=1e-4, lr_d=1e-4, b1=0.8, b2=0.999, steps_per_call=10)
RING_PACGAN = dict(RING, model="pacgan_mlp")

# name -> Config overrides (and `members`: a population of seeds 0..P-1; `shape`: the
# synthetic images' shape). Batch sizes are the reference settings of each model.
CASES: dict[str, dict] = {
    "mlp": dict(model="mlp", batch_size=64),  # PyTorch-GAN gan.py.
    "mlp_scan10": dict(model="mlp", batch_size=64, steps_per_call=10),
    "paper_mlp": dict(model="paper_mlp", batch_size=100, update_order="simultaneous",
                      optimizer="sgd", lr_g=0.1, lr_d=0.1, lr_decay=1.000004,
                      min_lr=1e-6),
    # dcgan at 28x28x1 (the data of --data_dir, else synthetic) and on synthetic 32x32x3.
    "dcgan28": dict(model="dcgan", batch_size=64),
    "dcgan32": dict(model="dcgan", batch_size=64, shape=(32, 32, 3)),
    # Populations of mlp members (seeds 0..P-1) as one vmapped step (jaxgan.sweep);
    # steps_per_s is then member-steps/s, comparable with the "mlp" case.
    "pop8": dict(model="mlp", batch_size=64, members=8),
    "pop32": dict(model="mlp", batch_size=64, members=32),
    # PacGAN's ring toy protocol (experiments/ring_vanilla.flags, its 100 steps per
    # dispatch): a single run and populations of 8 and 32 seeds.
    "ring": dict(RING),
    "ring_pop8": dict(RING, members=8),
    "ring_pop32": dict(RING, members=32),
    "ring_pacgan": dict(RING_PACGAN),
    "ring_pacgan_pop8": dict(RING_PACGAN, members=8),
}

# Steps per timed repeat with --steps=0: about the same seconds for each case.
STEPS = {"dcgan28": 16, "dcgan32": 8, "pop8": 32, "pop32": 8, "ring": 1000,
         "ring_pop8": 500, "ring_pop32": 200,
         "ring_pacgan": 100, "ring_pacgan_pop8": 20}
DEFAULT_STEPS = 200


def case_steps(name: str, steps: int) -> int:
  return steps or STEPS.get(name, DEFAULT_STEPS)

# A population case -> the single-run case it is compared with (member-steps/s over the
# single run's steps/s, measured in the same round).
SINGLE = {"pop8": "mlp", "pop32": "mlp", "ring_pop8": "ring", "ring_pop32": "ring",
          "ring_pacgan_pop8": "ring_pacgan"}

# A case -> its PyTorch loops (benchmarks/torch_loops.py --loop=...), the same model at
# the same batch size.
TORCH_LOOPS = {"mlp": ("published", "tuned"), "dcgan28": ("dcgan28",),
               "dcgan32": ("dcgan32",)}
TORCH_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "benchmarks", "torch_loops.py")

# Matmul shapes (batch, fan_in, fan_out) of the mlp model at batch 64: G's and D's layers.
_MLP_LAYERS = [(100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784),
               (784, 512), (512, 256), (256, 1)]


def measure_matmul_gflops(batch: int = 64, repeats: int = 30) -> float:
  """Median GFLOP/s of float32 matmuls of the mlp's forward and backward shapes."""
  import jax
  shapes = []
  for fan_in, fan_out in _MLP_LAYERS:
    shapes += [(batch, fan_in, fan_out),    # forward:  x @ W
               (batch, fan_out, fan_in),    # backward: dy @ W.T
               (fan_in, batch, fan_out)]    # weights:  x.T @ dy
  # Operands from NumPy: jax.random would compile one sampler per shape (24 compilations
  # before the first measurement).
  rng = np.random.default_rng(0)
  operands = [(jax.device_put(rng.standard_normal((m, k), np.float32)),
               jax.device_put(rng.standard_normal((k, n), np.float32)))
              for m, k, n in shapes]
  flops = sum(2 * m * k * n for m, k, n in shapes)
  f = jax.jit(lambda ops: [a @ b for a, b in ops])
  jax.block_until_ready(f(operands))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(10):
      out = f(operands)
    jax.block_until_ready(out)
    times.append((time.perf_counter() - t) / 10)
  return flops / statistics.median(times) / 1e9


def _peak_rss_mb() -> float:
  import resource
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _process_start_time() -> float:
  """Wall-clock time at which this process started (from /proc)."""
  with open("/proc/self/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
  start_ticks = int(fields[19])  # Field 22 of stat: starttime, in clock ticks since boot.
  with open("/proc/uptime") as f:
    uptime = float(f.read().split()[0])
  return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")


def _trace_events(trace_dir: str) -> list[dict]:
  import glob
  import gzip
  paths = glob.glob(os.path.join(trace_dir, "plugins", "profile", "*",
                                 "perfetto_trace.json.gz"))
  if not paths:
    return []
  with gzip.open(sorted(paths)[-1]) as f:
    trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  return [e for e in events if e.get("ph") == "X"]


_COMPILE_PHASES = ("PjRtCpuClient::Compile", "HLO passes through layout assignment",
                   "HLO passes after layout assignment", "ThunkEmitter::EmitEntryComputation",
                   "FusionCompiler::Compile", "JitCompiler::Compile")


def summarize_profile(compile_dir: str, steps_dir: str, steps: int,
                      per_step_s: float) -> str:
  """Text summary of the two traces written by run_case(profile_dir=...)."""
  import collections
  import re
  lines = ["XLA compilation of the train step (ms; kernels compile in parallel, so the "
           "phases overlap):"]
  totals, counts = collections.Counter(), collections.Counter()
  for e in _trace_events(compile_dir):
    for phase in _COMPILE_PHASES:
      if e["name"].startswith(phase):
        totals[phase] += e.get("dur", 0)
        counts[phase] += 1
  for phase in _COMPILE_PHASES:
    lines.append(f"  {phase:40s} {totals[phase] / 1e3:9.1f}  x{counts[phase]}")
  kinds = collections.Counter()
  for e in _trace_events(steps_dir):
    name = e["name"]
    # Kernels are named after their HLO instruction (ynn_fusion.43, dot.16, copy.2);
    # the rest are runtime and Python events.
    if (not re.fullmatch(r"(end: )?[a-z][a-z0-9_\-]*(\.\d+)*", name)
        or name in ("shard_args",)):
      continue
    kinds[re.sub(r"[.\d]+$", "", name)] += e.get("dur", 0)
  lines.append(f"Kernel time per step by kind (ms; wall time per step {per_step_s * 1e3:.2f};"
               " kernels also run concurrently, so the sum can exceed it):")
  for kind, us in kinds.most_common(15):
    lines.append(f"  {kind:40s} {us / 1e3 / steps:9.3f}")
  lines.append(f"  {'sum':40s} {sum(kinds.values()) / 1e3 / steps:9.3f}")
  return "\n".join(lines) + "\n"


def run_case(name: str, data_dir: str, steps: int, repeats: int,
             batch_size: int = 0, profile_dir: str = "") -> dict:
  """Times case `name` in this process; see the module docstring for the fields."""
  import dataclasses

  import jax
  import numpy as np

  from jaxgan import data, fileio, models
  from jaxgan.config import Config
  from jaxgan.errors import ConfigError
  from jaxgan.runtime.trainees import make_trainee

  process_start = _process_start_time()
  phases = {"imports_s": time.time() - process_start}  # Python, absl, jax, jaxgan.
  # The figures are those of a first start: no persistent compilation cache, even when the
  # environment configures one (JAX_COMPILATION_CACHE_DIR).
  jax.config.update("jax_enable_compilation_cache", False)
  t = time.perf_counter()
  overrides = dict(CASES[name])
  if overrides["model"] not in models.MODELS:
    raise ConfigError(f"case {name!r} needs model {overrides['model']!r}, which is not "
                      f"registered; known models: {sorted(models.MODELS)}.")
  if batch_size:
    overrides["batch_size"] = batch_size
  members = overrides.pop("members", 0)
  shape = overrides.pop("shape", (28, 28, 1))
  if members:  # A population of seeds 0..P-1: the loop's vmapped, guarded step.
    overrides["sweep"] = (f"seed={','.join(str(i) for i in range(members))}",)
  toy = data.is_toy(overrides.get("dataset", ""))  # Generated data: no --data_dir.
  config = dataclasses.replace(Config(num_steps=steps, data_dir="" if toy else data_dir),
                               **overrides)
  config.validate()
  if data.is_toy(config.dataset):
    train, source = data.load_dataset(config.dataset, "", "train"), config.dataset
  elif data_dir and shape == (28, 28, 1):
    train, source = data.load_dataset("bench", data_dir, "train"), "idx:" + data_dir
  else:  # Synthetic data of MNIST's size, the same code path.
    images = data.aligned_empty((60000,) + tuple(shape))
    images[...] = np.random.default_rng(0).integers(0, 256, images.shape, np.uint8)
    train, source = data.Dataset("synthetic", images, None, 0), "synthetic"
  phases["data_s"] = time.perf_counter() - t
  # What the training loop does, in its order: the step compiled from shapes, then the
  # initial state, then the data on the device.
  t = time.perf_counter()
  trainee = make_trainee(config, train)
  fns = trainee.step_fns
  trainee.compile(train.images, None)
  phases["compile_s"] = time.perf_counter() - t  # Tracing and lowering included.
  t = time.perf_counter()
  state = trainee.initial_state(train.images)
  phases["init_s"] = time.perf_counter() - t
  images, _ = trainee.place_data(train.images, None)
  per_call = config.steps_per_call

  def advance(state, step):
    return fns.advance(state, images, None, step, step + per_call)
  per_dispatch = per_call * max(members, 1)  # Member-steps per dispatch.

  t = time.perf_counter()
  state, metrics, step = advance(state, 0)
  jax.block_until_ready(metrics)
  phases["first_step_s"] = time.perf_counter() - t
  startup_s = time.time() - process_start

  # XLA counts a scan's body once, so the FLOPs of one step come from the single step.
  single = (fns.executable("single") if per_call == 1 else
            fns.single.lower(state, images, None).compile())
  cost = single.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops_per_step = float(cost.get("flops", 0.0)) / max(members, 1)  # Per member-step.
  for _ in range(2):  # Warm-up.
    state, metrics, step = advance(state, step)
  jax.block_until_ready(metrics)
  calls = max(1, steps // per_call)
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(calls):
      state, metrics, step = advance(state, step)
    jax.block_until_ready(metrics)
    rates.append(calls * per_dispatch / (time.perf_counter() - t))
  steps_per_s = statistics.median(rates)
  peak_rss_mb = _peak_rss_mb()  # Before the profile, which compiles again.
  profile = {}
  if profile_dir:  # After the timed repeats: the figures above are not traced.
    out_dir = os.path.join(profile_dir, name)
    options = jax.profiler.ProfileOptions()
    options.python_tracer_level = 0  # Python events would crowd out XLA's.
    options.host_tracer_level = 3
    jax.clear_caches()  # Else the compilation is served from jax's in-memory caches.
    lowered = (fns.multi if per_call > 1 else fns.single).lower(state, images, None)
    compile_dir = os.path.join(out_dir, "compile")
    with jax.profiler.trace(compile_dir, create_perfetto_trace=True,
                            profiler_options=options):
      lowered.compile()
    profiled = 20
    steps_dir = os.path.join(out_dir, "steps")
    with jax.profiler.trace(steps_dir, create_perfetto_trace=True,
                            profiler_options=options):
      t = time.perf_counter()
      for _ in range(profiled):
        state, metrics, step = advance(state, step)
      jax.block_until_ready(metrics)
      per_dispatch_s = (time.perf_counter() - t) / profiled
    summary = summarize_profile(compile_dir, steps_dir, profiled * per_dispatch,
                                per_dispatch_s / per_dispatch)
    fileio.write_text(os.path.join(out_dir, "summary.txt"), summary)
    profile = {"profile": os.path.join(out_dir, "summary.txt")}
  return {
      "name": name, "model": config.model, "batch_size": config.batch_size,
      "steps_per_call": per_call, "members": max(members, 1),
      "steps_per_s": round(steps_per_s, 2),
      "steps_per_s_repeats": [round(r, 2) for r in rates],
      "compile_s": round(phases["compile_s"], 2), "startup_s": round(startup_s, 2),
      "startup_phases": {k: round(v, 2) for k, v in phases.items()},
      "peak_rss_mb": round(peak_rss_mb, 1),
      "gflop_per_step": round(flops_per_step / 1e9, 4),
      "gflop_s": round(steps_per_s * flops_per_step / 1e9, 1),
      "data": source, "image_shape": list(train.image_shape),
      "backend": jax.default_backend(),
      **profile,
  }


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
  """One benchmarks/torch_loops.py run: its JSON line, or {"error": ...}."""
  cmd = [python, TORCH_SCRIPT, f"--loop={loop}", f"--data_dir={data_dir}",
         f"--steps={steps}", f"--repeats={repeats}",
         f"--batch_size={batch_size or 64}"]
  out = subprocess.run(cmd, capture_output=True, text=True)
  lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
  if out.returncode or not lines:
    return {"loop": loop, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
  return json.loads(lines[-1])


def run_child(name: str) -> dict:
  cmd = [sys.executable, "-m", "jaxgan.bench", f"--child={name}",
         f"--data_dir={FLAGS.data_dir}", f"--steps={case_steps(name, FLAGS.steps)}",
         f"--repeats={FLAGS.repeats}", f"--batch_size={FLAGS.batch_size}",
         f"--profile_dir={os.path.abspath(FLAGS.profile_dir) if FLAGS.profile_dir else ''}"]
  env = dict(os.environ)
  if FLAGS.profile_dir:  # XLA:CPU emits per-kernel trace events only with this flag.
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_cpu_enable_xprof_traceme=true").strip()
  out = subprocess.run(cmd, capture_output=True, text=True, env=env)
  lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
  if out.returncode or not lines:
    return {"name": name, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
  return json.loads(lines[-1])


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


def main(argv):
  del argv
  from jaxgan.errors import EXIT_USAGE, JaxganError
  if FLAGS.child:
    try:
      print(json.dumps(run_case(FLAGS.child, FLAGS.data_dir,
                                case_steps(FLAGS.child, FLAGS.steps), FLAGS.repeats,
                                FLAGS.batch_size, FLAGS.profile_dir)))
    except JaxganError as e:
      print(json.dumps({"name": FLAGS.child, "error": str(e)}))
    return
  unknown = [c for c in FLAGS.cases if c not in CASES]
  if unknown:
    print(f"jaxgan.bench: error: --cases: unknown {unknown}; expected some of "
          f"{sorted(CASES)}.", file=sys.stderr)
    sys.exit(EXIT_USAGE)
  if FLAGS.repeats < 1:
    print(f"jaxgan.bench: error: --repeats={FLAGS.repeats}: expected an integer >= 1.",
          file=sys.stderr)
    sys.exit(EXIT_USAGE)
  if FLAGS.rounds < 1:
    print(f"jaxgan.bench: error: --rounds={FLAGS.rounds}: expected an integer >= 1.",
          file=sys.stderr)
    sys.exit(EXIT_USAGE)
  torch_python = FLAGS.torch
  if torch_python:
    problem = torch_problem(torch_python)
    if problem:
      print(f"jaxgan.bench: --torch={torch_python} cannot import torch ({problem}); "
            "the PyTorch loops are skipped.", file=sys.stderr)
      torch_python = ""
    elif any(l in ("published", "tuned") for c in FLAGS.cases
             for l in TORCH_LOOPS.get(c, ())) and not FLAGS.data_dir:
      print("jaxgan.bench: the PyTorch mlp loops read Fashion-MNIST: they need "
            "--data_dir; skipped.", file=sys.stderr)
  # The matmul rate is measured before the first case and after each one; the best of
  # these is the machine's rate (a busy moment can only lower a measurement).
  # As many timed repeats of it as of a case, times 6 (30 at the default 5): a quick run
  # (--repeats=2) measures the rate quickly too.
  matmul_repeats = 6 * FLAGS.repeats
  matmul_rates = [measure_matmul_gflops(repeats=matmul_repeats)]
  rounds = []
  for r in range(FLAGS.rounds):
    measured = {}
    for name in FLAGS.cases:
      loops = [l for l in TORCH_LOOPS.get(name, ()) if torch_python
               and (FLAGS.data_dir or l not in ("published", "tuned"))]
      # Interleaved: jaxgan first in even rounds, PyTorch first in odd ones.
      torch_runs = {}
      jax_first = r % 2 == 0
      if jax_first:
        row = run_child(name)
      for loop in loops:
        torch_runs[loop] = run_torch_loop(torch_python, loop, FLAGS.data_dir,
                                          case_steps(name, FLAGS.steps), FLAGS.repeats,
                                          FLAGS.batch_size)
      if not jax_first:
        row = run_child(name)
      if torch_runs:
        row["torch_runs"] = torch_runs
      measured[name] = row
      matmul_rates.append(measure_matmul_gflops(repeats=matmul_repeats))
    rounds.append(measured)
  matmul = max(matmul_rates)
  rows = combine(rounds, matmul)
  for row in rows:
    if "error" not in row:
      row["matmul_gflop_s_measured"] = [round(x, 1) for x in matmul_rates]
      row["rounds"] = FLAGS.rounds
    if FLAGS.json:
      print(json.dumps(row), flush=True)
  if not FLAGS.json:
    cols = ["name", "batch_size", "steps_per_call", "steps_per_s", "ceiling_steps_per_s",
            "matmul_share", "gflop_s", "compile_s", "startup_s", "peak_rss_mb"]
    print(" ".join(f"{c:>12}" for c in cols) + "  ratios")
    for row in rows:
      if "error" in row:
        print(f"{row['name']:>12} error: {row['error']}")
      else:
        print(" ".join(f"{str(row[c]):>12}" for c in cols) + "  " + _ratios_text(row))
    print(f"float32 matmul rate (mlp layer shapes, batch 64): {matmul:.1f} GFLOP/s, the best "
          f"of {', '.join(f'{x:.1f}' for x in matmul_rates)} (before the first case and "
          "after each)")
  if any("error" in r for r in rows):
    sys.exit(1)


def run() -> None:
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
