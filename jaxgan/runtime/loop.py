"""The training loop: `run(config, workdir)`, one loop for single runs and populations.

Order of decisions (each can fail with a JaxganError *before* the workdir is touched):
  1. validate the config (a sweep: every member);
  2. load the dataset (IDX folder, toy problem or tfds) and check the batch fits;
  3. refuse a workdir that another run holds or whose saved config differs in a flag
     that changes the experiment (jaxgan.runtime.workdir); checks only, nothing written;
  4. build the trainee (jaxgan.runtime.trainees.make_trainee: a single run, or a
     population for --sweep / several processes; --mesh_shape on a single run is refused
     here) with its evaluator (a missing classifier stops the run here); compile the
     train step from shapes (before the rest of the memory is allocated: peak RSS), then
     the initial state from the seed;
  5. only now lock and create the workdir (--restart moves old contents aside); restore
     the newest readable checkpoint (resume by default), else start from the initial
     state; drop metrics records the resumed steps will write again; write config.json;
  6. loop: the step (compiled once, state donated) → at every event: the finite check
     (single run: stop, exit 3; population: each diverged member is reported and kept
     at its last finite state, exit 3 when all have, after writing its results) → log ·
     sample grids · evaluation · (a PBT population: an exchange of states ranked by
     what was just measured, trainee.exchange) · checkpoint, each on its own schedule
     and on the last step; on SIGTERM/SIGINT, checkpoint after the current step and raise Preempted
     (exit 75);
  7. `trainee.finish`: a population's results (sweep_results.csv, sweep_summary.csv with
     mean ± std over seeds, a printed ranking and error bars, sweep_plot.png).

A workdir that cannot be created or locked is bad input (WorkdirError, exit 2). Once the
lock is taken, a file the file system refuses (no space, quota, permission: a
jaxgan.errors.WriteError from the writers, fileio or the checkpoint manager) ends the run
with WriteFailed (exit 74): one message naming what could not be written and where, the
last good checkpoint, which is kept (a partial checkpoint is removed, never resumed
from), and how to resume.

The loop never branches on the kind of run: what differs is a method of the trainee
(jaxgan.runtime.trainees.Trainee). Several processes (jax.distributed) run this same
function: every process takes part in every step, checkpoint and evaluation; only
process 0 (`trainee.writes`) takes the lock and writes logs, samples, JSON and the
results.
"""

from __future__ import annotations

import errno
import json
import os
import time
from typing import Any

import jax
import numpy as np
from absl import logging

from jaxgan import data, fileio
from jaxgan.config import Config
from jaxgan.data import toy
from jaxgan.errors import Diverged, WriteError, WriteFailed
from jaxgan.eval import modes
from jaxgan.runtime import guard as guard_lib, workdir as workdir_lib, writers
from jaxgan.runtime.schedule import due, next_event
from jaxgan.runtime.trainees import Divergence, make_trainee


def run(config: Config, workdir: str, restart: bool = False) -> Any:
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the final
  state (a population's: jaxgan.sweep.population.PopulationState, leaves [P, ...]).

  restart: start from scratch even if the workdir holds a run (its contents are moved
  to WORKDIR.old-<time> first). Raises JaxganError (bad input; nothing written),
  Diverged (non-finite state, or every member of a population; not saved), Preempted
  (stop signal; checkpointed) or WriteFailed (a file could not be written for lack of
  space or permission; the last good checkpoint kept).
  """
  with guard_lib.RunGuard() as guard:
    return _run(config, workdir, restart, guard)


def _sync(name: str) -> None:
  """All processes wait here (a no-op for one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def _any_process(flag: bool) -> bool:
  """True if `flag` is set in any process: a stop signal stops every process at the
  same step."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))


def _run(config: Config, workdir: str, restart: bool, guard: guard_lib.RunGuard) -> Any:
  # 1-2. Validate and load: nothing is written before these succeed.
  config.validate()
  train_ds = data.load_training_split(config)
  num_steps = config.steps_for(train_ds.num_examples)
  if config.data_dir and config.dataset not in (train_ds.name, Config().dataset):
    logging.warning("--dataset=%s is not used: the data in --data_dir=%s is named after "
                    "its folder, %r (evaluation and the classifier cache use that name).",
                    config.dataset, config.data_dir, train_ds.name)

  # 3. Workdir checks (nothing written), by the process that will write (Trainee.writes).
  lock = workdir_lib.WorkdirLock(workdir)
  if jax.process_index() == 0:
    lock.check_free()
    if not restart:
      workdir_lib.check_resume_config(workdir, config)

  # 4. Trainee, compiled step, initial state. The step compiles first, from shapes: the
  # compiler's ~230 MB peak then sits on the smallest heap (peak RSS of the run).
  trainee = make_trainee(config, train_ds)
  schedule = (config.log_every, config.sample_every, config.checkpoint_every,
              config.eval_every)
  # A short run, or one whose events are closer than steps_per_call, never dispatches
  # the scan: it compiles the single step instead.
  trainee.compile(train_ds.images, train_ds.labels,
                  trainee.step_fns.uses_multi(schedule, num_steps))
  state = trainee.initial_state(train_ds.images)

  ckpts = None
  try:
    # 5. Workdir and resume. orbax is imported only now, after the compilation (its
    # ~26 MB would otherwise sit under the compiler's peak).
    from jaxgan.runtime.checkpoint import Checkpoints
    writer = trainee.writes
    if writer:
      guard.hold(lock.acquire())
    guard.catch_stop_signals()
    if writer and restart and (moved := workdir_lib.move_aside(workdir)):
      logging.warning("--restart: moved the previous contents of %s to %s.", workdir,
                      moved)
    _sync("jaxgan workdir ready")
    ckpts = guard.hold(Checkpoints(os.path.join(workdir, "checkpoints"),
                                   config.max_checkpoints, owner=writer))
    restored = workdir_lib.restore_latest_good(ckpts, state, workdir, set_aside=writer)
    if restored is not None:
      state, step = restored
      trainee.restored(state)
      logging.info("Resumed from %s at step %d.", ckpts.directory, step)
    else:
      step = 0
    metrics_writer = None
    if writer:
      fileio.write_json(os.path.join(workdir, "config.json"),
                        {**json.loads(config.to_json()), "data_name": train_ds.name,
                         "resolved_num_steps": num_steps})
      metrics_writer = guard.hold(writers.MetricsWriter(workdir, step))
      trainee.forget_after(workdir, step)

    images, labels = trainee.place_data(train_ds.images, train_ds.labels)
    num_classes = trainee.gan.num_classes
    sample_labels = ((lambda n: np.arange(n, dtype=np.int32) % num_classes)
                     if num_classes else (lambda n: None))
    toy_problem = toy.PROBLEMS.get(train_ds.name)
    # The fixed noise of the sample grids (toy data: of the mode metrics).
    num_fixed = (modes.EVAL_SAMPLES if toy_problem is not None
                 else config.sample_grid ** 2)
    fixed_z = trainee.fixed_noise(num_fixed)

    def write(step: int, per_member: dict[int, dict[str, float]]) -> None:
      for index, scalars in per_member.items():
        metrics_writer.write(step, scalars, tags=trainee.tags(index))

    def report(step: int, divergences: list[Divergence]) -> None:
      if writer:
        for d in divergences:
          metrics_writer.write(step, {"diverged_at": d.step},
                               tags={**trainee.tags(d.member),
                                     "diverged": ", ".join(d.quantities)})

    def save_samples(step: int) -> dict[int, dict[str, float]]:
      """Writes the sample grids; returns the toy mode metrics it logged."""
      pixels = trainee.sample(state, fixed_z, sample_labels(num_fixed))  # [P, n, ...]
      scalars: dict[int, dict[str, float]] = {}
      if not writer:
        return scalars
      healthy = set(trainee.per_member_indices())
      for m in trainee.members:
        if m.index not in healthy:
          continue
        path = os.path.join(workdir, "samples", trainee.subdir(m.index),
                            f"step_{step}.png")
        if toy_problem is None:
          grid = writers.image_grid(
              data.from_pixels(pixels[m.index], trainee.gan.pixel_range),
              rows=config.sample_grid)
          writers.save_png(path, grid)
          continue
        # Toy data: mode metrics (logged like the other metrics) and a scatter plot.
        points = pixels[m.index].reshape(num_fixed, -1)
        scalars[m.index] = modes.evaluate(toy_problem, points)
        s = scalars[m.index]
        name = " ".join(filter(None, [toy_problem.name, trainee.title(m.index)]))
        writers.save_toy_scatter(
            path, toy_problem, points,
            f"{name} step {step}\n{s['modes_covered']:.0f}/{toy_problem.num_modes} "
            f"modes, {s['high_quality_pct']:.1f}% high-quality")
      if scalars:
        write(step, scalars)
        logging.info("step %d  modes covered %s/%d  high-quality %% %s", step,
                     [int(s["modes_covered"]) for s in scalars.values()],
                     toy_problem.num_modes,
                     [round(s["high_quality_pct"], 1) for s in scalars.values()])
      return scalars

    # 6. The loop. The host keeps its own step counter: no device sync per step.
    logging.info("%s", trainee.describe(train_ds.name, train_ds.num_examples, num_steps,
                                        step))
    t_last, step_last = time.perf_counter(), step
    metrics = None
    while step < num_steps:
      state, metrics, step = trainee.step_fns.advance(
          state, images, labels, step, next_event(step, schedule, num_steps))
      stopping = _any_process(guard.stop_requested)  # A signal during writes acts next.
      if stopping or step == num_steps or any(due(step, e, num_steps) for e in schedule):
        # Before anything of this step is written.
        try:
          divergences = trainee.health(step, state, metrics, ckpts.latest_step())
        except Diverged:
          trainee.on_diverged(workdir, state)
          raise
        report(step, divergences)
      if due(step, config.log_every, num_steps):
        per_member = trainee.per_member(metrics)
        now = time.perf_counter()
        steps_per_s = (step - step_last) / max(now - t_last, 1e-9)
        t_last, step_last = now, step
        eta = (num_steps - step) / max(steps_per_s, 1e-9)
        for s in per_member.values():
          s["steps_per_s"] = steps_per_s
        logging.info("%s", trainee.log_line(step, num_steps, per_member, steps_per_s,
                                            eta))
        if writer:
          write(step, per_member)
      measured: dict[int, dict[str, float]] = {}  # This step's quality metrics.
      if due(step, config.sample_every, num_steps):
        measured = save_samples(step)
      if config.eval_every and due(step, config.eval_every, num_steps):
        evaluated = trainee.evaluate(state, step, workdir)
        for index, scalars in evaluated.items():
          measured.setdefault(index, {}).update(scalars)
        if writer:
          write(step, evaluated)
      # A PBT population may exchange states here, after what ranks its members was
      # measured and before the checkpoint (which then holds the exchanged state).
      state = trainee.exchange(state, step, num_steps, measured, workdir)
      if due(step, config.checkpoint_every, num_steps) or step == num_steps or stopping:
        ckpts.save(state, step)
      if stopping and step < num_steps:
        guard.raise_preempted(step, ckpts.directory)

    # 7. What the trainee adds at the end (a population: its results).
    trainee.finish(workdir, state)
    return state
  except WriteError as e:
    raise WriteFailed(_write_failure(e, ckpts, workdir)) from e


# What to do about a write the file system refused, by errno.
_REMEDIES = {
    errno.ENOSPC: "free space on that file system",
    errno.EDQUOT: "free space or raise the disk quota",
    errno.EFBIG: "move the workdir to a file system that takes larger files",
    errno.EACCES: "make {workdir} writable for this user",
    errno.EPERM: "make {workdir} writable for this user",
    errno.EROFS: "remount that file system read-write",
}


def _write_failure(error: WriteError, ckpts: Any, workdir: str) -> str:
  """One line: what could not be written where and why, what was kept, how to resume."""
  remedy = _REMEDIES.get(error.errno, "fix the cause").format(workdir=workdir)
  if ckpts is None:  # Before the checkpoints were opened: nothing was trained.
    return (f"{error}. Training had not started; the workdir's checkpoints, if any, are "
            f"untouched. To start: {remedy}, then run the same command again.")
  last = ckpts.latest_step()
  partial = (" and the partial one was removed"
             if ckpts.owner and error.filename == ckpts.directory else "")
  kept = (f"Nothing is lost: the last good checkpoint (step {last}) is kept{partial}"
          if last is not None else f"No checkpoint had been written yet{partial}")
  then = f"resume from step {last}" if last is not None else "start again"
  return f"{error}. {kept}. To {then}: {remedy}, then run the same command again."
