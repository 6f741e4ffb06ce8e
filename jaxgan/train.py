"""The training loop: `run(config, workdir)`.

Order of decisions (each can fail with a JaxganError *before* the workdir is touched):
  1. validate the config;
  2. load the dataset (IDX folder or tfds) and check the batch fits;
  3. refuse a workdir that another run holds or whose saved config differs in a flag
     that changes the model (jaxgan/workdir.py); checks only, nothing written;
  4. build the GAN and its pure steps; compile the train step from shapes (before the
     rest of the memory is allocated: peak RSS), then the initial state from the seed;
  5. only now lock and create the workdir (--restart moves old contents aside);
     restore the newest readable checkpoint (resume by default), else start from the
     initial state;
  6. loop: train_step (compiled once, state donated) → finite check → log · sample grid ·
     checkpoint, each on its own schedule and on the last step; on SIGTERM/SIGINT,
     checkpoint after the current step and raise Preempted (jaxgan/guard.py).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import numpy as np
from absl import logging

from jaxgan import (data, guard as guard_lib, hostmem, toy, workdir as workdir_lib,
                    writers)
from jaxgan.config import Config
from jaxgan.eval import runs as eval_runs
from jaxgan.state import (GANState, compile_lowered_once, compile_once, make_gan,
                          step_compiler_options)
from jaxgan.steps import make_steps, repeat_step

SAMPLE_NOISE_STREAM = 1  # fold_in stream of the seed key for the fixed sample noise.


def due(step: int, every: int, total: int) -> bool:
  """True when a schedule of period `every` (0 = never) fires after `step` of `total`."""
  return every > 0 and (step % every == 0 or step == total)


def next_event(step: int, every: tuple[int, ...], total: int) -> int:
  """The first step after `step` at which any schedule in `every` fires (or `total`)."""
  candidates = [total] + [(step // e + 1) * e for e in every if e > 0]
  return min(candidates)


class StepFunctions:
  """The jitted train step the loop runs, in one or two lengths.

  With steps_per_call = n > 1, runs of n steps go through one `lax.scan` dispatch and
  the steps left before a log/sample/checkpoint event go one at a time, so every event
  still sees its exact step. The scan body is the same train_step, so the parameters
  are bit-identical to n single steps (tests/test_perf.py checks it). Each length is
  compiled the first time it is needed, with the state donated; after that compilation
  the heap pages the compiler freed go back to the OS (jaxgan.hostmem).
  """

  def __init__(self, train_step, steps_per_call: int):
    self.steps_per_call = steps_per_call
    options = step_compiler_options()
    self.single = jax.jit(train_step, donate_argnums=0, compiler_options=options)
    self.multi = (jax.jit(repeat_step(train_step, steps_per_call), donate_argnums=0,
                          compiler_options=options)
                  if steps_per_call > 1 else None)
    self._compiled: dict[str, Any] = {}
    self._called: set[str] = set()

  def compile(self, state: Any, images: Any, labels: Any = None) -> None:
    """Compiles the length the loop runs most (multi if any, else single) now, from
    shapes (jax.ShapeDtypeStruct trees, or arrays): the loop compiles before it
    allocates the rest of its memory, so the compiler's peak is not stacked on top of
    it. With steps_per_call > 1 the single step compiles when first needed."""
    name, fn = ("multi", self.multi) if self.multi is not None else ("single", self.single)
    self._compiled[name] = fn.lower(state, images, labels).compile()
    hostmem.release_freed_memory()

  def executable(self, name: str = "single") -> Any:
    """The program compile() made ("single", or "multi" with steps_per_call > 1)."""
    return self._compiled[name]

  def _call(self, name: str, fn, *args):
    if name in self._compiled:
      return self._compiled[name](*args)
    out = fn(*args)  # Compiles on its first call, then dispatches asynchronously.
    if name not in self._called:
      self._called.add(name)
      hostmem.release_freed_memory()
    return out

  def advance(self, state: GANState, images: jax.Array, labels: jax.Array | None,
              step: int, until: int):
    """Runs one dispatch from `step` towards `until`; returns (state, metrics, step)."""
    if self.multi is not None and until - step >= self.steps_per_call:
      state, metrics = self._call("multi", self.multi, state, images, labels)
      return state, metrics, step + self.steps_per_call
    state, metrics = self._call("single", self.single, state, images, labels)
    return state, metrics, step + 1


def _shape_of(array: np.ndarray) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct(array.shape, array.dtype)


def _write_json(path: str, obj) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def run(config: Config, workdir: str, restart: bool = False) -> GANState:
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the state.

  restart: start from scratch even if the workdir holds a run (its contents are moved
  to WORKDIR.old-<time> first). Raises JaxganError (bad input; nothing written),
  Diverged (non-finite state; not saved) or Preempted (stop signal; checkpointed).
  """
  with guard_lib.RunGuard() as guard:
    return _run(config, workdir, restart, guard)


def _run(config: Config, workdir: str, restart: bool,
         guard: guard_lib.RunGuard) -> GANState:
  # 1-2. Validate and load: nothing is written before these succeed.
  config.validate()
  train_ds = data.load_dataset(config.dataset, config.data_dir, "train")
  data.check_batch_fits(train_ds, config.batch_size)
  num_steps = config.steps_for(train_ds.num_examples)

  # 3. Workdir checks (nothing written).
  lock = workdir_lib.WorkdirLock(workdir)
  lock.check_free()
  if not restart:
    workdir_lib.check_resume_config(workdir, config)

  # 4. Model, steps, initial state. The train step is compiled first, from shapes:
  # the compiler's ~230 MB peak then sits on the smallest heap (peak RSS of the run).
  gan = make_gan(config, train_ds.image_shape,
                 train_ds.num_classes if train_ds.labels is not None else 0)
  steps = make_steps(config, gan, train_ds.num_examples)
  seed_key = jax.random.PRNGKey(config.seed)
  init = jax.jit(gan.init).lower(seed_key)
  step_fns = StepFunctions(steps.train_step, config.steps_per_call)
  step_fns.compile(init.out_info, _shape_of(train_ds.images),
                   _shape_of(train_ds.labels) if gan.num_classes else None)
  state = compile_lowered_once(init)(seed_key)
  evaluate = eval_runs.make_training_eval(config, gan, steps.sample, train_ds)

  # 5. Workdir and resume. orbax is imported only now, after the compilation (its ~26 MB
  # would otherwise sit under the compiler's peak).
  from jaxgan.checkpoint import Checkpoints
  guard.hold(lock.acquire())
  guard.catch_stop_signals()
  if restart and (moved := workdir_lib.move_aside(workdir)):
    logging.warning("--restart: moved the previous contents of %s to %s.", workdir, moved)
  ckpts = guard.hold(Checkpoints(os.path.join(workdir, "checkpoints"),
                                 config.max_checkpoints, owner=True))
  restored = workdir_lib.restore_latest_good(ckpts, state, workdir)
  if restored is not None:
    state = restored
    logging.info("Resumed from %s at step %d.", ckpts.directory, int(state.step))
  _write_json(os.path.join(workdir, "config.json"),
              {**json.loads(config.to_json()), "resolved_num_steps": num_steps})
  metrics_writer = guard.hold(writers.MetricsWriter(workdir, int(state.step)))

  images = jax.device_put(train_ds.images)
  # Labels go to the device only for a conditional GAN; samples cycle through classes.
  labels = jax.device_put(train_ds.labels) if gan.num_classes else None
  sample_labels = ((lambda n: np.arange(n, dtype=np.int32) % gan.num_classes)
                   if gan.num_classes else (lambda n: None))
  sample = jax.jit(steps.sample)
  toy_problem = toy.PROBLEMS.get(train_ds.name)
  # The fixed noise of the sample grids (toy data: of the mode metrics), one small
  # program compiled once (eager ops would each compile on their own).
  fixed_z = compile_once(
      lambda key: gan.sample_noise(jax.random.fold_in(key, SAMPLE_NOISE_STREAM),
                                   toy.EVAL_SAMPLES if toy_problem is not None
                                   else config.sample_grid ** 2), seed_key)(seed_key)

  def save_samples(step: int) -> None:
    if toy_problem is not None:
      # Toy data: mode metrics (logged like the other metrics) and a scatter plot.
      points = np.asarray(sample(state, fixed_z, sample_labels(toy.EVAL_SAMPLES))).reshape(
          toy.EVAL_SAMPLES, -1)
      scalars = toy.evaluate(toy_problem, points)
      metrics_writer.write(step, scalars)
      logging.info("step %d  modes covered %d/%d  high-quality %.1f%%", step,
                   scalars["modes_covered"], toy_problem.num_modes,
                   scalars["high_quality_pct"])
      toy.scatter(os.path.join(workdir, "samples", f"step_{step}.png"), toy_problem,
                  points, f"{toy_problem.name} step {step}: "
                  f"{scalars['modes_covered']:.0f}/{toy_problem.num_modes} modes, "
                  f"{scalars['high_quality_pct']:.1f}% high-quality")
      return
    pixels = np.asarray(sample(state, fixed_z, sample_labels(len(fixed_z))))
    grid = writers.image_grid(data.from_pixels(pixels, gan.pixel_range),
                              rows=config.sample_grid)
    writers.save_png(os.path.join(workdir, "samples", f"step_{step}.png"), grid)

  schedule = (config.log_every, config.sample_every, config.checkpoint_every,
              config.eval_every)

  # 6. The loop. The host keeps its own step counter: no device sync per step.
  step = int(state.step)
  logging.info("Training %s on %s (%d examples) for %d steps from step %d.",
               config.model, train_ds.name, train_ds.num_examples, num_steps, step)
  t_last, step_last = time.perf_counter(), step
  while step < num_steps:
    state, metrics, step = step_fns.advance(state, images, labels, step,
                                            next_event(step, schedule, num_steps))
    stopping = guard.stop_requested  # Read once: a signal during the writes acts next.
    if stopping or step == num_steps or any(due(step, e, num_steps) for e in schedule):
      guard_lib.check_finite(step, state, metrics, ckpts.latest_step())  # Before writes.
    if due(step, config.log_every, num_steps):
      scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
      now = time.perf_counter()
      scalars["steps_per_s"] = (step - step_last) / max(now - t_last, 1e-9)
      t_last, step_last = now, step
      eta = (num_steps - step) / max(scalars["steps_per_s"], 1e-9)
      logging.info("step %d/%d  d_loss %.4f  g_loss %.4f  D(x) %.3f  D(G(z)) %.3f  "
                   "%.1f steps/s  ETA %.0fs", step, num_steps, scalars["d_loss"],
                   scalars["g_loss"], scalars["d_real"], scalars["d_fake"],
                   scalars["steps_per_s"], eta)
      metrics_writer.write(step, scalars)
    if due(step, config.sample_every, num_steps):
      save_samples(step)
    if evaluate and due(step, config.eval_every, num_steps):
      metrics_writer.write(step, evaluate(state, workdir))
    if due(step, config.checkpoint_every, num_steps) or step == num_steps or stopping:
      ckpts.save(state)
    if stopping and step < num_steps:
      guard.raise_preempted(step, ckpts.directory)
  return state
