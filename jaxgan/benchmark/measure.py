"""One bench case timed in this process: steps/s, compile and start-up phases, peak RSS,
FLOPs per step, and the machine's float32 matmul rate; with a profile directory, traces of
the step's compilation and of 20 steps, and a summary of where the time goes.

The step timed is the one the training loop runs (the trainee's `StepFunctions`,
jaxgan.runtime), compiled and initialised in the loop's order. Run it in a fresh process
(jaxgan.benchmark.compare does) for `startup_s` (process start to the first completed
step, data loading and compilation included) and `peak_rss_mb` to be the figures a user
sees. FLOPs per step come from XLA's cost analysis of the compiled step.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import gzip
import json
import os
import re
import resource
import statistics
import time

import jax
import numpy as np

from jaxgan import data, fileio, models
from jaxgan.benchmark.cases import CASES
from jaxgan.config import Config
from jaxgan.errors import ConfigError
from jaxgan.runtime.trainees import make_trainee

# Matmul shapes (batch, fan_in, fan_out) of the mlp model at batch 64: G's and D's layers.
_MLP_LAYERS = [(100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784),
               (784, 512), (512, 256), (256, 1)]


def measure_matmul_gflops(batch: int = 64, repeats: int = 30) -> float:
  """Median GFLOP/s of float32 matmuls of the mlp's forward and backward shapes."""
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
  """Times case `name` (of CASES) in this process: one row (a dict, JSON-ready) of
  steps/s, its repeats, compile and start-up phases, peak RSS and FLOPs per step."""
  process_start = _process_start_time()
  # Python, absl, jax, jaxgan: everything imported before this call, this module's
  # imports included.
  phases = {"imports_s": time.time() - process_start}
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
