"""The training loop: `run(config, workdir)`, one loop for single runs and populations.

Order of decisions (each can fail with a JaxganError *before* the workdir is touched):
  1. validate the config (a sweep: every member);
  2. load the dataset (IDX folder, toy problem or tfds) and check the batch fits;
  3. refuse a workdir that another run holds or whose saved config differs in a flag
     that changes the experiment (jaxgan.runtime.workdir); checks only, nothing written;
  4. build the trainee (jaxgan.runtime.trainees: a single run, or a population for
     --sweep / several processes) with its evaluator (a missing classifier stops the run
     here); compile the train step from shapes (before the rest of the memory is
     allocated: peak RSS), then the initial state from the seed;
  5. only now lock and create the workdir (--restart moves old contents aside); restore
     the newest readable checkpoint (resume by default), else start from the initial
     state; drop metrics records the resumed steps will write again; write config.json;
  6. loop: the step (compiled once, state donated) → at every event: the finite check
     (single run: stop, exit 3; population: each diverged member is reported and kept
     at its last finite state, exit 3 when all have) → log · sample grids · evaluation ·
     checkpoint, each on its own schedule and on the last step; on SIGTERM/SIGINT,
     checkpoint after the current step and raise Preempted (exit 75);
  7. a population's results: sweep_results.csv, sweep_summary.csv (mean ± std over
     seeds), a printed ranking and error bars, sweep_plot.png.

Several processes (jax.distributed) run this same function: every process takes part in
every step, checkpoint and evaluation; only process 0 takes the lock and writes logs,
samples, JSON and the results.
"""

from __future__ import annotations

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
from jaxgan.errors import Diverged
from jaxgan.eval import modes
from jaxgan.runtime import guard as guard_lib, workdir as workdir_lib, writers
from jaxgan.runtime.schedule import due, next_event
from jaxgan.runtime.trainees import Divergence, make_trainee
from jaxgan.sweep import plots, results as results_lib


def run(config: Config, workdir: str, restart: bool = False) -> Any:
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the final
  state (a population's: jaxgan.sweep.population.PopulationState, leaves [P, ...]).

  restart: start from scratch even if the workdir holds a run (its contents are moved
  to WORKDIR.old-<time> first). Raises JaxganError (bad input; nothing written),
  Diverged (non-finite state, or every member of a population; not saved) or Preempted
  (stop signal; checkpointed).
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
  train_ds = data.training_split(data.load_dataset(config.dataset, config.data_dir,
                                                  "train"),
                                 config.num_valid, config.batch_size, config.pack)
  num_steps = config.steps_for(train_ds.num_examples)
  writer = jax.process_index() == 0
  if config.data_dir and config.dataset not in (train_ds.name, Config().dataset):
    logging.warning("--dataset=%s is not used: the data in --data_dir=%s is named after "
                    "its folder, %r (evaluation and the classifier cache use that name).",
                    config.dataset, config.data_dir, train_ds.name)

  # 3. Workdir checks (nothing written).
  lock = workdir_lib.WorkdirLock(workdir)
  if writer:
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

  # 5. Workdir and resume. orbax is imported only now, after the compilation (its ~26 MB
  # would otherwise sit under the compiler's peak).
  from jaxgan.runtime.checkpoint import Checkpoints
  if writer:
    guard.hold(lock.acquire())
  guard.catch_stop_signals()
  if writer and restart and (moved := workdir_lib.move_aside(workdir)):
    logging.warning("--restart: moved the previous contents of %s to %s.", workdir, moved)
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

  images, labels = trainee.place_data(train_ds.images, train_ds.labels)
  num_classes = trainee.gan.num_classes
  sample_labels = ((lambda n: np.arange(n, dtype=np.int32) % num_classes)
                   if num_classes else (lambda n: None))
  toy_problem = toy.PROBLEMS.get(train_ds.name)
  # The fixed noise of the sample grids (toy data: of the mode metrics).
  num_fixed = modes.EVAL_SAMPLES if toy_problem is not None else config.sample_grid ** 2
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

  def save_samples(step: int) -> None:
    pixels = trainee.sample(state, fixed_z, sample_labels(num_fixed))  # [P, n, ...]
    if not writer:
      return
    scalars: dict[int, dict[str, float]] = {}
    for m in trainee.members:
      if m.index not in healthy:
        continue
      path = os.path.join(workdir, "samples", trainee.subdir(m.index), f"step_{step}.png")
      if toy_problem is None:
        grid = writers.image_grid(data.from_pixels(pixels[m.index], trainee.gan.pixel_range),
                                  rows=config.sample_grid)
        writers.save_png(path, grid)
        continue
      # Toy data: mode metrics (logged like the other metrics) and a scatter plot.
      points = pixels[m.index].reshape(num_fixed, -1)
      scalars[m.index] = modes.evaluate(toy_problem, points)
      s = scalars[m.index]
      writers.save_toy_scatter(
          path, toy_problem, points,
          f"{toy_problem.name}{' member %d' % m.index if trainee.is_population else ''} "
          f"step {step}\n{s['modes_covered']:.0f}/{toy_problem.num_modes} modes, "
          f"{s['high_quality_pct']:.1f}% high-quality")
    if scalars:
      write(step, scalars)
      logging.info("step %d  modes covered %s/%d  high-quality %% %s", step,
                   [int(s["modes_covered"]) for s in scalars.values()],
                   toy_problem.num_modes,
                   [round(s["high_quality_pct"], 1) for s in scalars.values()])

  healthy = {m.index for m in trainee.members
             if trainee.diverged_at(state, None)[m.index] < 0}

  # 6. The loop. The host keeps its own step counter: no device sync per step.
  logging.info("Training %s%s on %s (%d examples) for %d steps from step %d.",
               f"a population of {len(trainee.members)} " if trainee.is_population
               else "", config.model, train_ds.name, train_ds.num_examples, num_steps,
               step)
  t_last, step_last = time.perf_counter(), step
  metrics = None
  while step < num_steps:
    state, metrics, step = trainee.step_fns.advance(state, images, labels, step,
                                                    next_event(step, schedule, num_steps))
    stopping = _any_process(guard.stop_requested)  # A signal during the writes acts next.
    if stopping or step == num_steps or any(due(step, e, num_steps) for e in schedule):
      # Before anything of this step is written.
      try:
        divergences = trainee.health(step, state, metrics, ckpts.latest_step())
      except Diverged:
        if trainee.is_population:
          diverged_at = trainee.diverged_at(state, None)  # Every process: a collective.
          if writer:
            _write_results(trainee, workdir, config, diverged_at)
        raise
      report(step, divergences)
      healthy -= {d.member for d in divergences}
    if due(step, config.log_every, num_steps):
      per_member = trainee.per_member(metrics)
      now = time.perf_counter()
      steps_per_s = (step - step_last) / max(now - t_last, 1e-9)
      t_last, step_last = now, step
      eta = (num_steps - step) / max(steps_per_s, 1e-9)
      for s in per_member.values():
        s["steps_per_s"] = steps_per_s
      if trainee.is_population:
        logging.info("step %d/%d  %d members  d_loss %s  g_loss %s  %.1f steps/s  "
                     "ETA %.0fs", step, num_steps, len(per_member),
                     [round(s["d_loss"], 3) for s in per_member.values()],
                     [round(s["g_loss"], 3) for s in per_member.values()], steps_per_s, eta)
      else:
        s = per_member[0]
        logging.info("step %d/%d  d_loss %.4f  g_loss %.4f  D(x) %.3f  D(G(z)) %.3f  "
                     "%.1f steps/s  ETA %.0fs", step, num_steps, s["d_loss"], s["g_loss"],
                     s["d_real"], s["d_fake"], steps_per_s, eta)
      if writer:
        write(step, per_member)
    if due(step, config.sample_every, num_steps):
      save_samples(step)
    if config.eval_every and due(step, config.eval_every, num_steps):
      evaluated = trainee.evaluate(state, step, workdir)
      if writer:
        write(step, evaluated)
    if due(step, config.checkpoint_every, num_steps) or step == num_steps or stopping:
      ckpts.save(state, step)
    if stopping and step < num_steps:
      guard.raise_preempted(step, ckpts.directory)

  # 7. Results of a population.
  if trainee.is_population:
    diverged_at = trainee.diverged_at(state, None)  # Every process: a collective.
    if writer:
      _write_results(trainee, workdir, config, diverged_at)
  return state


def _write_results(trainee: Any, workdir: str, config: Config,
                   diverged_at: np.ndarray) -> None:
  """Ranks the members by their logged metrics (jaxgan.sweep.results), writes the CSV,
  the mean ± std summary and the plot, prints the ranking and the error bars."""
  names = list(trainee.members[0].hparams)
  final = results_lib.read_final_metrics(os.path.join(workdir, "metrics.jsonl"),
                                         len(trainee.members), exclude=names)
  metric = results_lib.resolve_metric(config.sweep_metric, list(final))
  if metric is not None and metric not in final:
    logging.warning("--sweep_metric=%s was not logged (logged: %s); the table is not "
                    "ranked.", metric, sorted(final))
    metric = None
  rows = results_lib.rank_members(trainee.members, final, metric,
                                  diverged_at)
  path = results_lib.write_results(workdir, rows)
  summary = results_lib.summarise(rows, names)
  results_lib.write_summary(workdir, summary)
  drawn = results_lib.headline_metrics(list(final), metric)
  if config.sweep_plot and names and drawn:
    plots.save_sweep_plot(
        os.path.join(workdir, results_lib.PLOT_PNG), rows, names, drawn,
        f"{os.path.basename(os.path.normpath(workdir))}: {len(rows)} members, "
        "final values")
  how = (f"ranked by {metric} ({'higher' if results_lib.higher_is_better(metric) else 'lower'}"
         " is better)" if metric else "not ranked: no quality metric was logged (add "
         "--eval_every=N for FID, or name one with --sweep_metric)")
  print(f"Sweep of {len(trainee.members)} members, {how}; table: {path}")
  print(results_lib.format_summary(rows, names, metric))
  print(results_lib.format_mean_std(summary, names, metric))
