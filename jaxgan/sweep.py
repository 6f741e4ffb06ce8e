"""The population loop: `run(config, workdir)` for `--sweep` runs.

Order of decisions (each can fail with a JaxganError *before* the workdir is touched):
  1. validate the base config, expand the sweep into members (each validated);
  2. load the dataset, check the batch fits;
  3. choose and validate the ('pop', 'data') device mesh;
  4. build the GAN and its steps once (from member 0), the stacked initial state;
  5. only now create the workdir; a workdir holding a checkpoint is resumed, after
     checking that it holds this same population (else WorkdirError);
  6. loop: the vmapped step (jit once, state donated; `--steps_per_call` steps per
     dispatch, stopping at each event's exact step) → per-member log records ·
     per-member sample grids (toy data: per-member mode metrics and scatter plots) ·
     per-member evaluation (`--eval_every`) · one checkpoint of the whole population;
  7. results: WORKDIR/sweep_results.csv, a printed ranking, WORKDIR/sweep_plot.png.

Several processes (jax.distributed) run this same function: every process takes part in
every step and checkpoint (orbax writes each process's shards); only process 0 writes
logs, samples, JSON, the table and the plot. Each process's devices compute only their
part of each batch (the batch is spread over 'data', the members over 'pop').
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from typing import Any, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from jaxgan import data, plots, population, toy, writers
from jaxgan.checkpoint import Checkpoints
from jaxgan.config import Config
from jaxgan.errors import ConfigError, WorkdirError
from jaxgan.eval import members as eval_members
from jaxgan.state import GANState, make_gan
from jaxgan.steps import make_steps
from jaxgan.train import SAMPLE_NOISE_STREAM, _write_json, due, next_event

RESULTS_CSV = "sweep_results.csv"
PLOT_PNG = "sweep_plot.png"
POPULATION_JSON = "population.json"
# Ranking direction: lower is better except for these (with or without "eval/").
HIGHER_IS_BETTER = frozenset({"inception_score", "is", "d_real", "modes_covered",
                              "high_quality_pct", "parzen_ll", "classifier_accuracy"})
EVAL_PREFIX = "eval/"


def higher_is_better(metric: str) -> bool:
  return metric.removeprefix(EVAL_PREFIX) in HIGHER_IS_BETTER


class PopulationCheckpoints(Checkpoints):
  """Checkpoints of a population state: its step is [P] (all equal), given by the host
  so that no process has to read a shard it does not hold."""

  def save_at(self, state: GANState, step: int) -> int:
    if step not in self._manager.all_steps():
      self._manager.save(step, args=ocp.args.StandardSave(state))
      self._manager.wait_until_finished()
    return step


def resolve_metric(requested: str, available: Sequence[str]) -> str:
  """--sweep_metric, or by default the evaluation's FID when it is logged, else g_loss.

  An evaluation metric may be named with or without its "eval/" prefix (fid ==
  eval/fid) when only the prefixed name is logged.
  """
  if not requested:
    requested = "fid"
    if EVAL_PREFIX + requested not in available and requested not in available:
      return "g_loss"
  if requested not in available and EVAL_PREFIX + requested in available:
    return EVAL_PREFIX + requested
  return requested


def rank_members(members: Sequence[population.Member],
                 final: dict[str, np.ndarray], metric: str) -> list[dict[str, Any]]:
  """Rows {rank, member, <hparams>, <metric>, <other metrics>} best first.

  final: metric name -> [P] values. Lower is better except for HIGHER_IS_BETTER names;
  non-finite values (a diverged member) rank last.
  """
  sign = -1.0 if higher_is_better(metric) else 1.0
  others = sorted(k for k in final if k != metric)
  rows = []
  for m in members:
    row: dict[str, Any] = {"member": m.index, **m.hparams}
    row[metric] = float(final[metric][m.index])
    for k in others:
      row[k] = float(final[k][m.index])
    rows.append(row)

  def key(row):
    value = row[metric]
    return (not math.isfinite(value), sign * value if math.isfinite(value) else 0.0,
            row["member"])

  rows.sort(key=key)
  return [{"rank": r + 1, **row} for r, row in enumerate(rows)]


def write_results(workdir: str, rows: list[dict[str, Any]]) -> str:
  path = os.path.join(workdir, RESULTS_CSV)
  tmp = path + ".tmp"
  with open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  os.replace(tmp, path)
  return path


def format_summary(rows: list[dict[str, Any]], names: Sequence[str], metric: str) -> str:
  header = ["rank", "member", *names, metric]
  lines = ["  ".join(f"{h:>10}" for h in header)]
  for row in rows:
    cells = []
    for h in header:
      v = row[h]
      cells.append(f"{v:>10.4g}" if isinstance(v, float) else f"{v:>10}")
    lines.append("  ".join(cells))
  return "\n".join(lines)


def last_records(path: str, num_members: int,
                 exclude: Sequence[str] = ()) -> dict[str, np.ndarray]:
  """Each member's last logged value of every metric in metrics.jsonl -> {name: [P]}
  (for a resumed run that had no step left to train). Losses, toy mode metrics and
  evaluation scalars are separate records; each name keeps its latest value.
  exclude: names that are not metrics (the swept hyperparameters, stored as tags)."""
  last: dict[int, dict] = {}
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        record = json.loads(line)
        if "member" in record:
          last.setdefault(int(record["member"]), {}).update(record)
  if len(last) != num_members:
    return {}
  keys = set.intersection(*(set(r) for r in last.values()))
  keys -= {"step", "member", "steps_per_s", *exclude}
  keys = {k for k in keys if all(isinstance(last[i][k], (int, float))
                                 for i in range(num_members))}
  return {k: np.array([last[i][k] for i in range(num_members)], np.float64)
          for k in keys}


def _population_record(members: Sequence[population.Member],
                       mesh_shape: tuple[int, int]) -> dict[str, Any]:
  return {"members": [{"member": m.index, **m.hparams} for m in members],
          "mesh_shape": list(mesh_shape)}


def run(config: Config, workdir: str) -> GANState:
  """Trains the population of `config.sweep` in `workdir`; returns the population state
  (every leaf [num_members, ...])."""
  # 1-2. Validate, expand, load: nothing is written before these succeed.
  config.validate()
  if config.conditional:
    # The population step does not pass the class labels yet (train_step's 3rd arg).
    raise ConfigError("--conditional is not supported with --sweep (or several "
                      "processes) yet: train each configuration as a single run.")
  members = population.make_members(config, config.sweep)
  names = list(members[0].hparams)
  base = members[0].config
  train_ds = data.load_dataset(config.dataset, config.data_dir, "train")
  data.check_batch_fits(train_ds, config.batch_size)
  num_steps = config.steps_for(train_ds.num_examples)

  # 3. Mesh.
  mesh_shape = population.choose_mesh_shape(
      population.parse_mesh_shape(config.mesh_shape), jax.device_count(), len(members),
      config.batch_size)
  mesh = population.make_mesh(mesh_shape)
  sh = population.shardings(mesh)

  # 4. One GAN and one step for all members; the evaluator (a missing classifier
  # stops the run here, before the workdir is touched).
  gan = make_gan(base, train_ds.image_shape)
  steps = make_steps(base, gan, train_ds.num_examples,
                     constrain_batch=population.batch_constraint(mesh))
  writer_process = jax.process_index() == 0
  pop_eval = None
  if config.eval_every:
    from jaxgan.eval import runs as eval_runs
    pop_eval = eval_members.PopulationEval(
        members, gan, steps.sample, eval_runs.make_evaluator(config, train_ds),
        out_sharding=sh["replicated"])

  # 5. Workdir and resume.
  record = _population_record(members, mesh_shape)
  os.makedirs(workdir, exist_ok=True)
  ckpts = PopulationCheckpoints(os.path.join(workdir, "checkpoints"),
                                config.max_checkpoints)
  pop_path = os.path.join(workdir, POPULATION_JSON)
  step = 0
  if ckpts.latest_step() is not None:
    saved = None
    if os.path.exists(pop_path):
      with open(pop_path) as f:
        saved = json.load(f)
    if saved is None or saved["members"] != record["members"]:
      raise WorkdirError(
          f"--workdir={workdir!r} holds checkpoints of a different run "
          f"({'a single run' if saved is None else 'another sweep'}); expected the "
          f"population {record['members']}. Use a fresh --workdir.")
    step = ckpts.latest_step()
  # The initial state is built even on resume: it gives orbax the shapes and shardings.
  state = population.init_population(gan, members, sharding=sh["members"])
  if step:
    state = ckpts.restore(state, step)
    logging.info("Resumed the population from %s at step %d.", ckpts.directory, step)
  if writer_process:
    _write_json(os.path.join(workdir, "config.json"),
                {**json.loads(config.to_json()), "resolved_num_steps": num_steps})
    _write_json(pop_path, record)
    metrics_writer = writers.MetricsWriter(workdir)

  images = population.place_dataset(train_ds.images, mesh)
  pop_single = population.make_population_step(steps.train_step, mesh)
  pop_multi = (population.make_population_step(steps.train_step, mesh,
                                                config.steps_per_call)
               if config.steps_per_call > 1 else None)
  seeds = np.array([m.config.seed for m in members], np.uint32)

  def member_noise(count: int) -> jax.Array:
    """[P, count, latent] noise, member i's = a single run's (its seed's stream 1)."""
    return jax.jit(
        jax.vmap(lambda seed: gan.sample_noise(
            jax.random.fold_in(jax.random.PRNGKey(seed), SAMPLE_NOISE_STREAM), count)),
        out_shardings=sh["members"])(seeds)

  toy_problem = toy.PROBLEMS.get(train_ds.name)
  # Toy data: train.run's 2500 mode-metric samples per member; else the grid's noise.
  fixed_z = member_noise(toy.EVAL_SAMPLES if toy_problem else config.sample_grid ** 2)
  sample = jax.jit(jax.vmap(steps.sample), out_shardings=sh["replicated"])
  final: dict[str, np.ndarray] = {}

  def save_samples(step: int) -> None:
    pixels = np.asarray(sample(state, fixed_z))  # [P, n, H, W, C]
    if not writer_process:
      return
    if toy_problem is not None:
      # Toy data: per-member mode metrics (logged with the member tags) and scatters.
      per_member = []
      for m in members:
        points = pixels[m.index].reshape(toy.EVAL_SAMPLES, -1)
        scalars = toy.evaluate(toy_problem, points)
        per_member.append(scalars)
        metrics_writer.write(step, scalars, tags={"member": m.index, **m.hparams})
        toy.scatter(os.path.join(workdir, "samples", f"member_{m.index}",
                                 f"step_{step}.png"), toy_problem, points,
                    f"{toy_problem.name} member {m.index} step {step}: "
                    f"{scalars['modes_covered']:.0f}/{toy_problem.num_modes} modes, "
                    f"{scalars['high_quality_pct']:.1f}% high-quality")
      for name in per_member[0]:
        final[name] = np.array([s[name] for s in per_member], np.float64)
      logging.info("step %d  modes covered %s/%d  high-quality %% %s", step,
                   final["modes_covered"].astype(int).tolist(), toy_problem.num_modes,
                   np.round(final["high_quality_pct"], 1).tolist())
      return
    for m in members:
      grid = writers.image_grid(data.from_pixels(pixels[m.index], gan.pixel_range),
                                rows=config.sample_grid)
      writers.save_png(os.path.join(workdir, "samples", f"member_{m.index}",
                                    f"step_{step}.png"), grid)

  def evaluate(step: int) -> None:
    generated = pop_eval.generate(state)  # Every process: a collective.
    if not writer_process:
      return
    results = pop_eval.evaluate(generated, step, config.dataset, config.model, workdir)
    for m, res in zip(members, results):
      metrics_writer.write(step, eval_members.scalars(res),
                           tags={"member": m.index, **m.hparams})
    final.update(eval_members.stack_scalars(results))
    if "eval/fid" in final:
      logging.info("step %d  FID per member %s", step,
                   np.round(final["eval/fid"], 2).tolist())

  # 6. The loop. With --steps_per_call=n, n steps go in one dispatch whenever no event
  # falls inside them; the steps before an event go one by one (as train.run does).
  logging.info("Training a population of %d %s members on %s for %d steps from step %d "
               "on a %s mesh %s.", len(members), config.model, train_ds.name, num_steps,
               step, mesh_shape, dict(mesh.shape))
  schedule = (config.log_every, config.sample_every, config.checkpoint_every,
              config.eval_every)
  t_last, step_last = time.perf_counter(), step
  while step < num_steps:
    until = next_event(step, schedule, num_steps)
    if pop_multi is not None and until - step >= config.steps_per_call:
      state, metrics = pop_multi(state, images)
      step += config.steps_per_call
    else:
      state, metrics = pop_single(state, images)
      step += 1
    if due(step, config.log_every, num_steps) or step == num_steps:
      logged = {k: np.asarray(v, np.float64) for k, v in jax.device_get(metrics).items()}
      final.update(logged)
    if due(step, config.log_every, num_steps):
      now = time.perf_counter()
      steps_per_s = (step - step_last) / max(now - t_last, 1e-9)
      t_last, step_last = now, step
      logging.info("step %d/%d  %d members  d_loss %s  g_loss %s  %.1f steps/s", step,
                   num_steps, len(members), np.round(final["d_loss"], 3),
                   np.round(final["g_loss"], 3), steps_per_s)
      if writer_process:
        for m in members:
          metrics_writer.write(step, {k: v[m.index] for k, v in logged.items()}
                               | {"steps_per_s": steps_per_s},
                               tags={"member": m.index, **m.hparams})
    if due(step, config.sample_every, num_steps):
      save_samples(step)
    if pop_eval is not None and due(step, config.eval_every, num_steps):
      evaluate(step)
    if due(step, config.checkpoint_every, num_steps) or step == num_steps:
      ckpts.save_at(state, step)
  ckpts.close()

  # 7. Results.
  if writer_process:
    metrics_writer.close()
    if not final:
      final = last_records(os.path.join(workdir, "metrics.jsonl"), len(members),
                           exclude=names)
    if final:
      metric = resolve_metric(config.sweep_metric, list(final))
      if metric not in final:
        logging.warning("--sweep_metric=%s was not logged (logged: %s); ranking by "
                        "g_loss.", metric, sorted(final))
        metric = "g_loss"
      rows = rank_members(members, final, metric)
      path = write_results(workdir, rows)
      if names:
        plots.save_metric_plot(os.path.join(workdir, PLOT_PNG), rows, names, metric)
      print(f"Sweep of {len(members)} members ranked by {metric} "
            f"({'higher' if higher_is_better(metric) else 'lower'} is better), "
            f"step {step}; table: {path}")
      print(format_summary(rows, names, metric))
  return state
