"""What the loop trains: a single run or a population, behind one declared interface.

The loop (jaxgan.runtime.loop) never asks which of the two it holds: everything that
differs between them is a method of `Trainee`, whose docstrings are the contract, and
`make_trainee` chooses. `SingleRun` is one configuration in one process; `PopulationRun`
is the members of --sweep (or one member on several processes) as one vmapped program
over a ('pop', 'data') mesh (jaxgan.sweep.population). In the loop's order a trainee
gives it:
  * `describe(...)`: the run's start line; `members` (one `config.Member` per
    configuration: a single run has one, without hyperparameters), `tags(i)` for member
    i's metrics records, `subdir(i)` for its sample/eval files, `title(i)` for figures;
  * `compile(...)`, then `initial_state(images)`: the train step compiled from shapes
    first (peak RSS), then the state from the seed (and the images, for a GAN whose
    init depends on data); `restored(state)` after a resume; `place_data(...)`;
  * `step_fns.advance(...)`: the compiled step (the state donated), one or n steps;
  * `health(step, state, metrics, last_good_step)`: the finite check. A single run
    raises Diverged (exit 3) on any NaN/Inf. A population's step already kept each
    diverged member at its last finite state (jaxgan.sweep.population.GuardedStep):
    this reports the members that diverged since the last check and raises Diverged
    only when all have; `diverged_at(state)` says which have;
  * `per_member(metrics)` and `log_line(...)`: the step's metrics per healthy member,
    and the log line they make;
  * `fixed_noise(count)`, `sample(state, z, labels)`: images [P, n, ...] of every
    member; `evaluate(state, step, workdir)`: per-member evaluation scalars
    (--eval_every; jaxgan.eval.members), `evaluation_results(...)` the full results;
  * `exchange(state, step, num_steps, scalars, workdir)` after the step's evaluation:
    the state the run goes on with (a population under --pbt_interval: after a PBT
    round, jaxgan.sweep.pbt; otherwise the state itself); `forget_after(workdir,
    step)` on a resume drops what the steps after the checkpoint wrote of its own
    (a PBT population: its lineage rows);
  * `finish(workdir, state)` after the last step (a population writes its results
    table, summary and plot), and `on_diverged(workdir, state)` before Diverged
    propagates (a population writes its table, every member marked diverged).
Only process 0 writes files (`writes`); every process calls every method, since some
are collectives.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from typing import Any, Sequence

import jax
import numpy as np
from absl import logging

from jaxgan import rng
from jaxgan.config import Config, Member, parse_mesh_shape, sweep_members
from jaxgan.data import Dataset
from jaxgan.errors import ConfigError, Diverged
from jaxgan.eval import members as eval_members
from jaxgan.eval.evaluator import Evaluator
from jaxgan.runtime import guard as guard_lib
from jaxgan.runtime.compile import (StepFunctions, compile_lowered_once, compile_once,
                                    release_freed_memory)
from jaxgan.state import GAN, make_gan
from jaxgan.steps import make_steps
from jaxgan.sweep import lineage, pbt, plots, population, results as results_lib


def shape_of(array: np.ndarray | None) -> jax.ShapeDtypeStruct | None:
  return None if array is None else jax.ShapeDtypeStruct(array.shape, array.dtype)


def host(tree: Any) -> Any:
  """`tree` on the host as numpy, gathered from all processes where it is sharded."""
  leaves = jax.tree_util.tree_leaves(tree)
  if any(isinstance(x, jax.Array) and not x.is_fully_addressable for x in leaves):
    from jax.experimental import multihost_utils
    return multihost_utils.process_allgather(tree, tiled=True)
  return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


@dataclasses.dataclass
class Divergence:
  member: int
  step: int
  quantities: list[str]


class Trainee(abc.ABC):
  """What the training loop is handed. Subclasses set, in __init__: `config`,
  `members`, `gan` (the static GAN: num_classes and pixel_range are read by the loop),
  `steps` (jaxgan.steps.Steps), `step_fns` (the compiled step: jaxgan.runtime.compile.
  StepFunctions), `writes` (this process writes files: process 0), and `_init` (the
  lowered initial-state program)."""

  config: Config
  members: list[Member]
  gan: GAN
  step_fns: StepFunctions
  writes: bool

  # ----------------------------------------------------------------- names
  @abc.abstractmethod
  def describe(self, data_name: str, num_examples: int, num_steps: int,
               step: int) -> str:
    """The run's start line: 'Training <what> on <data_name> (<num_examples>
    examples) for <num_steps> steps from step <step>.', <what> the model (a
    population: 'a population of P <model>')."""

  @abc.abstractmethod
  def tags(self, index: int) -> dict[str, Any]:
    """Fields of member `index`'s metrics records (a single run: none)."""

  @abc.abstractmethod
  def subdir(self, index: int) -> str:
    """Member `index`'s folder under samples/ and eval/ ('' : those folders)."""

  @abc.abstractmethod
  def title(self, index: int) -> str:
    """Member `index`'s name in a figure title ('' for a single run)."""

  # ----------------------------------------------------------------- start
  def compile(self, images: np.ndarray, labels: np.ndarray | None,
              multi: bool = True) -> None:
    """Compiles the train step from the shapes of the initial state, the images and
    (a conditional GAN) the labels, before anything else is allocated: `multi` as
    StepFunctions.compile."""
    self.step_fns.compile(self._init.out_info, shape_of(images),
                          shape_of(labels) if self.gan.num_classes else None, multi)

  @abc.abstractmethod
  def initial_state(self, images: np.ndarray | None = None) -> Any:
    """The state at step 0 from the seed(s), compiled as a one-shot program; `images`
    (the training split) for a GAN whose init depends on data (GAN.needs_data), else
    ValueError. Its structure (and shardings) are what a checkpoint restores into."""

  @abc.abstractmethod
  def restored(self, state: Any) -> None:
    """Told the state a resume restored (a population: divergences it already holds
    were reported by the run that saved it)."""

  @abc.abstractmethod
  def place_data(self, images: np.ndarray, labels: np.ndarray | None
                 ) -> tuple[jax.Array, jax.Array | None]:
    """The training split on the device(s) the step reads it from; labels only for a
    conditional GAN (else None)."""

  @abc.abstractmethod
  def fixed_noise(self, count: int) -> jax.Array:
    """[P, count, ...] noise of the sample grids: each member's from its own seed
    (stream rng.SAMPLE_GRID), the same at every step."""

  # ----------------------------------------------------------------- events
  @abc.abstractmethod
  def health(self, step: int, state: Any, metrics: Any,
             last_good_step: int | None) -> list[Divergence]:
    """The finite check, before anything of `step` is written: the members that
    diverged since the last check (reported once each). Raises Diverged (naming
    `last_good_step`, the checkpoint kept) when the run cannot go on: a single run on
    any NaN/Inf, a population when every member has diverged."""

  @abc.abstractmethod
  def diverged_at(self, state: Any) -> np.ndarray:
    """[P] the step at which each member diverged, -1 while healthy (a collective)."""

  @abc.abstractmethod
  def per_member(self, metrics: Any) -> dict[int, dict[str, float]]:
    """The step's metrics on the host, one dict per member not yet reported diverged."""

  @abc.abstractmethod
  def log_line(self, step: int, num_steps: int,
               per_member: dict[int, dict[str, float]], steps_per_s: float,
               eta_s: float) -> str:
    """The progress line of `step`: 'step N/T  ...losses...  S steps/s  ETA Es'."""

  @abc.abstractmethod
  def sample(self, state: Any, z: jax.Array, labels: np.ndarray | None) -> np.ndarray:
    """Images [P, n, ...] of every member on the host, from `fixed_noise` z (and the
    class labels of a conditional GAN)."""

  @abc.abstractmethod
  def evaluation_results(self, state: Any, step: int, workdir: str | None
                         ) -> list[dict[str, Any]]:
    """Every member's evaluation results (jaxgan.eval.members), written to its
    eval/ JSON when a workdir is given; [] without an evaluator, and on the processes
    that do not write (the sampling is a collective: every process calls this)."""

  def evaluate(self, state: Any, step: int, workdir: str) -> dict[int, dict[str, float]]:
    """The --eval_every hook: evaluation_results, as the scalars to log ('eval/fid',
    ...) of each member not reported diverged."""
    results = self.evaluation_results(state, step, workdir)
    healthy = set(self.per_member_indices())
    return {m.index: eval_members.scalars(r) for m, r in zip(self.members, results)
            if m.index in healthy}

  def per_member_indices(self) -> list[int]:
    """The members whose metrics are still logged (not reported diverged)."""
    return [m.index for m in self.members]

  def exchange(self, state: Any, step: int, num_steps: int,
               scalars: dict[int, dict[str, float]], workdir: str) -> Any:
    """After `step`'s evaluation (every process calls it: it may be a collective):
    the state to train on. scalars: the metrics each member logged at this step (on
    the process that writes; {} on the others). A population under --pbt_interval
    runs a PBT round when one is due; otherwise the state is returned as it is."""
    del step, num_steps, scalars, workdir
    return state

  def forget_after(self, workdir: str, step: int) -> None:
    """On the process that writes, when the run (re)starts at `step`: drops the files'
    records of later steps that this trainee writes itself (metrics records are the
    loop's), since the steps after `step` are trained, and written, again."""
    del workdir, step

  # ----------------------------------------------------------------- end
  def finish(self, workdir: str, state: Any) -> None:
    """After the last step (every process calls it): a population writes its results
    (process 0); a single run has nothing to add."""

  def on_diverged(self, workdir: str, state: Any) -> None:
    """Before Diverged propagates (every process calls it): a population writes its
    results, every member marked diverged (process 0); a single run has nothing to add
    (its last good checkpoint is its result)."""


class SingleRun(Trainee):
  """One configuration in one process."""

  def __init__(self, config: Config, train: Dataset,
               evaluator: Evaluator | None = None):
    """evaluator: what --eval_every evaluates with (default: made when
    config.eval_every is set, eval.members.make_evaluator)."""
    self.config = config
    self.members = [Member(index=0, hparams={}, config=config)]
    self.gan = make_gan(config, train.image_shape,
                        train.num_classes if train.labels is not None else 0)
    self.steps = make_steps(config, self.gan, train.num_examples)
    self.step_fns = StepFunctions(self.steps.train_step, config.steps_per_call)
    self._seed_key = rng.seed_key(config.seed)
    # A data-dependent init (minibatch discrimination, the paper's output bias) reads the
    # training images; the others compile without them.
    self._init = (jax.jit(self.steps.init).lower(self._seed_key, shape_of(train.images))
                  if self.gan.needs_data else jax.jit(self.steps.init).lower(self._seed_key))
    self._sample = jax.jit(self.steps.sample)
    if evaluator is None and config.eval_every:
      evaluator = eval_members.make_evaluator(config, train)
    self._eval = (eval_members.GeneratorEval(config, self.gan, self.steps.sample,
                                             evaluator)
                  if evaluator is not None else None)
    self.writes = True  # One process (make_trainee): it writes.

  def describe(self, data_name: str, num_examples: int, num_steps: int,
               step: int) -> str:
    return (f"Training {self.config.model} on {data_name} ({num_examples} examples) for "
            f"{num_steps} steps from step {step}.")

  def tags(self, index: int) -> dict[str, Any]:
    return {}

  def subdir(self, index: int) -> str:
    return ""

  def title(self, index: int) -> str:
    return ""

  def initial_state(self, images: np.ndarray | None = None) -> Any:
    init = compile_lowered_once(self._init)
    if self.gan.needs_data:
      if images is None:
        raise ValueError("this GAN's initial state depends on the training images")
      return init(self._seed_key, images)
    return init(self._seed_key)

  def restored(self, state: Any) -> None:
    del state

  def place_data(self, images: np.ndarray, labels: np.ndarray | None):
    # Labels go to the device only for a conditional GAN.
    return (jax.device_put(images),
            jax.device_put(labels) if self.gan.num_classes else None)

  def fixed_noise(self, count: int) -> jax.Array:
    # One small program compiled once (eager ops would each compile on their own).
    key = rng.seed_stream(self.config.seed, rng.SAMPLE_GRID)
    return compile_once(self.gan.sample_noise, key, count, static_argnums=1)(key)[None]

  def health(self, step: int, state: Any, metrics: Any,
             last_good_step: int | None) -> list[Divergence]:
    guard_lib.check_finite(step, state, metrics, last_good_step)
    return []

  def diverged_at(self, state: Any) -> np.ndarray:
    return np.full((1,), -1, np.int64)  # A diverged single run has stopped.

  def per_member(self, metrics: Any) -> dict[int, dict[str, float]]:
    return {0: {k: float(v) for k, v in jax.device_get(metrics).items()}}

  def log_line(self, step: int, num_steps: int,
               per_member: dict[int, dict[str, float]], steps_per_s: float,
               eta_s: float) -> str:
    s = per_member[0]
    return (f"step {step}/{num_steps}  d_loss {s['d_loss']:.4f}  g_loss {s['g_loss']:.4f}"
            f"  D(x) {s['d_real']:.3f}  D(G(z)) {s['d_fake']:.3f}  {steps_per_s:.3g} "
            f"steps/s  ETA {eta_s:.0f}s")

  def sample(self, state: Any, z: jax.Array, labels: np.ndarray | None) -> np.ndarray:
    return np.asarray(self._sample(state, z[0], labels))[None]

  def evaluation_results(self, state: Any, step: int, workdir: str | None
                         ) -> list[dict[str, Any]]:
    del step  # GeneratorEval reads the state's own step.
    return [] if self._eval is None else [self._eval(state, workdir)]


class PopulationRun(Trainee):
  """The members of --sweep (or one member on several processes) as one program."""

  def __init__(self, config: Config, train: Dataset,
               evaluator: Evaluator | None = None):
    """evaluator: what --eval_every evaluates every member with (default: made when
    config.eval_every is set, eval.members.make_evaluator)."""
    self.config = config
    self.members = sweep_members(config)
    self.mesh = population.make_mesh(population.choose_mesh_shape(
        parse_mesh_shape(config.mesh_shape), jax.device_count(), len(self.members),
        config.batch_size))
    sh = population.shardings(self.mesh)
    self._sh = sh
    base = self.members[0].config
    self.gan = make_gan(base, train.image_shape,
                        train.num_classes if train.labels is not None else 0)
    self.steps = make_steps(base, self.gan, train.num_examples,
                            constrain_batch=population.batch_constraint(self.mesh))
    self.guarded = population.GuardedStep(self.steps.guarded_train_step)
    self.step_fns = StepFunctions(
        population.population_step(self.guarded), config.steps_per_call,
        in_shardings=(sh["members"], sh["replicated"], sh["replicated"]),
        out_shardings=(sh["members"], sh["replicated"]))
    init = jax.jit(population.init_fn(self.gan, self.members, self.steps.init),
                   out_shardings=sh["members"])
    self._init = (init.lower(shape_of(train.images)) if self.gan.needs_data
                  else init.lower())
    self._sample = jax.jit(jax.vmap(self.steps.sample, in_axes=(0, 0, None)),
                           out_shardings=sh["replicated"])
    if evaluator is None and config.eval_every:
      evaluator = eval_members.make_evaluator(config, train)
    self._eval = (eval_members.PopulationEval(self.members, self.gan, self.steps.sample,
                                              evaluator, out_sharding=sh["replicated"])
                  if evaluator is not None else None)
    self.writes = jax.process_index() == 0  # Process 0 writes logs, samples, tables.
    self._reported: set[int] = set()
    self._pbt = pbt.Settings.from_config(config)
    self._exchange = None  # Compiled at the first PBT round.

  def describe(self, data_name: str, num_examples: int, num_steps: int,
               step: int) -> str:
    return (f"Training a population of {len(self.members)} {self.config.model} on "
            f"{data_name} ({num_examples} examples) for {num_steps} steps from step "
            f"{step}.")

  def tags(self, index: int) -> dict[str, Any]:
    return {"member": index, **self.members[index].hparams}

  def subdir(self, index: int) -> str:
    return f"member_{index}"

  def title(self, index: int) -> str:
    return f"member {index}"

  def initial_state(self, images: np.ndarray | None = None) -> Any:
    init = compile_lowered_once(self._init)
    if self.gan.needs_data:
      if images is None:
        raise ValueError("this GAN's initial state depends on the training images")
      return init(images)
    return init()

  def restored(self, state: Any) -> None:
    self._reported |= {int(i) for i in np.flatnonzero(self.diverged_at(state) >= 0)}

  def place_data(self, images: np.ndarray, labels: np.ndarray | None):
    placed = population.place_dataset(images, self.mesh)
    release_freed_memory()
    return placed, (population.place_dataset(labels, self.mesh)
                    if self.gan.num_classes else None)

  def fixed_noise(self, count: int) -> jax.Array:
    return compile_once(population.member_noise_fn(self.gan, self.members, count),
                        out_shardings=self._sh["members"])()

  def diverged_at(self, state: Any) -> np.ndarray:
    return np.asarray(host(state.health.diverged_at), np.int64)

  def health(self, step: int, state: Any, metrics: Any,
             last_good_step: int | None) -> list[Divergence]:
    del step
    values = host(state.health)
    new = []
    for i in np.flatnonzero(values.diverged_at >= 0):
      if int(i) in self._reported:
        continue
      self._reported.add(int(i))
      new.append(Divergence(int(i), int(values.diverged_at[i]),
                            self.guarded.describe(int(values.nonfinite[i]))))
    for d in new:
      logging.warning("Member %d %s diverged at step %d: non-finite %s. It keeps its last "
                      "finite state and ranks last; the other members train on.",
                      d.member, self.members[d.member].hparams, d.step,
                      ", ".join(d.quantities))
    if len(self._reported) == len(self.members):
      kept = ("no checkpoint was written yet" if last_good_step is None else
              f"the last checkpoint (step {last_good_step}) is kept")
      raise Diverged(
          f"all {len(self.members)} members diverged: " + "; ".join(
              f"member {i} at step {int(values.diverged_at[i])} "
              f"({', '.join(self.guarded.describe(int(values.nonfinite[i])))})"
              for i in range(len(self.members)))
          + f". Their non-finite states were not saved; {kept}. Lower the learning "
          "rates (--lr_g, --lr_d) or change --loss, then resume or --restart.")
    return new

  def per_member_indices(self) -> list[int]:
    return [m.index for m in self.members if m.index not in self._reported]

  def per_member(self, metrics: Any) -> dict[int, dict[str, float]]:
    values = host(metrics)
    return {i: {k: float(v[i]) for k, v in values.items()}
            for i in self.per_member_indices()}

  def log_line(self, step: int, num_steps: int,
               per_member: dict[int, dict[str, float]], steps_per_s: float,
               eta_s: float) -> str:
    d_loss = [round(s["d_loss"], 3) for s in per_member.values()]
    g_loss = [round(s["g_loss"], 3) for s in per_member.values()]
    return (f"step {step}/{num_steps}  {len(per_member)} members  d_loss {d_loss}  "
            f"g_loss {g_loss}  {steps_per_s:.3g} steps/s  ETA {eta_s:.0f}s")

  def sample(self, state: Any, z: jax.Array, labels: np.ndarray | None) -> np.ndarray:
    return host(self._sample(state.gan, z, labels))

  def evaluation_results(self, state: Any, step: int, workdir: str | None
                         ) -> list[dict[str, Any]]:
    if self._eval is None:
      return []
    generated = self._eval.generate(state.gan)  # Every process: a collective.
    if not self.writes:
      return []
    return self._eval.evaluate(generated, step, self.config.data_name,
                               self.config.model, workdir)

  def exchange(self, state: Any, step: int, num_steps: int,
               scalars: dict[int, dict[str, float]], workdir: str) -> Any:
    settings = self._pbt
    if settings is None or not pbt.due(step, settings.interval, num_steps):
      return state
    names = settings.names
    diverged = self.diverged_at(state) >= 0  # Collectives, on every process.
    current = self._hparams(state)
    decision = None
    if self.writes:  # Only the writer has the evaluation's results.
      decision = pbt.decide(settings, step, scalars, list(diverged), current)
      parents, values = decision.parents, decision.values
    else:
      parents = np.zeros(len(self.members), np.int32)
      values = {n: np.zeros(len(self.members), np.float32) for n in names}
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      parents, values = multihost_utils.broadcast_one_to_all((parents, values))
    if self._exchange is None:
      sh = self._sh
      self._exchange = jax.jit(population.exchange_fn(names),
                               in_shardings=(sh["members"], sh["replicated"],
                                             sh["replicated"]),
                               out_shardings=sh["members"], donate_argnums=0)
    state = self._exchange(state, np.asarray(parents, np.int32),
                           {n: np.asarray(values[n], np.float32) for n in names})
    # A replaced diverged member holds a healthy state again: its metrics are logged.
    self._reported -= {int(i) for i in np.flatnonzero(np.asarray(parents)
                                                       != np.arange(len(parents)))}
    if decision is not None:
      lineage.write_round(workdir, step, names, decision.rows)
      logging.info("%s", pbt.describe(decision, names))
    return state

  def _hparams(self, state: Any) -> dict[str, np.ndarray]:
    """{explored name: [P] float32} the hyperparameters in the state now."""
    return {n: np.asarray(host(population.GETTERS[n](state.gan)), np.float32)
            for n in self._pbt.names}

  def forget_after(self, workdir: str, step: int) -> None:
    if self._pbt is not None and (dropped := lineage.drop_rounds_after(workdir, step)):
      logging.info("Dropped %d rows of PBT rounds after step %d from %s (they are "
                   "decided again).", dropped, step, lineage.LINEAGE_CSV)

  def finish(self, workdir: str, state: Any) -> None:
    self._write_results(workdir, state)

  def on_diverged(self, workdir: str, state: Any) -> None:
    self._write_results(workdir, state)

  def _write_results(self, workdir: str, state: Any) -> None:
    """Ranks the members by their logged metrics (jaxgan.sweep.results), writes the
    CSV, the mean ± std summary and the plot, prints the ranking and the error bars."""
    diverged_at = self.diverged_at(state)  # Every process: a collective.
    now = self._hparams(state) if self._pbt is not None else {}
    if not self.writes:
      return
    config = self.config
    names = list(self.members[0].hparams)
    final = results_lib.read_final_metrics(os.path.join(workdir, "metrics.jsonl"),
                                           len(self.members), exclude=names)
    # Under PBT a member's swept columns are its starting values; these are its last.
    final.update({f"pbt/{n}": v.astype(np.float64) for n, v in now.items()})
    metric = results_lib.resolve_metric(config.sweep_metric, list(final))
    if metric is not None and metric not in final:
      logging.warning("--sweep_metric=%s was not logged (logged: %s); the table is not "
                      "ranked.", metric, sorted(final))
      metric = None
    rows = results_lib.rank_members(self.members, final, metric, diverged_at)
    path = results_lib.write_results(workdir, rows)
    summary = results_lib.summarise(rows, names)
    results_lib.write_summary(workdir, summary)
    drawn = results_lib.headline_metrics(list(final), metric)
    if config.sweep_plot and names and drawn:
      plots.save_sweep_plot(
          os.path.join(workdir, results_lib.PLOT_PNG), rows, names, drawn,
          f"{os.path.basename(os.path.normpath(workdir))}: {len(rows)} members, "
          "final values")
    better = "higher" if metric and results_lib.higher_is_better(metric) else "lower"
    how = (f"ranked by {metric} ({better} is better)" if metric else
           "not ranked: no quality metric was logged (add --eval_every=N for FID, or "
           "name one with --sweep_metric)")
    print(f"Sweep of {len(self.members)} members, {how}; table: {path}")
    print(results_lib.format_summary(rows, names, metric))
    print(results_lib.format_mean_std(summary, names, metric))


def make_trainee(config: Config, train: Dataset,
                 evaluator: Evaluator | None = None) -> Trainee:
  """A population for --sweep or several processes (its state and batches then span all
  devices), else a single run. evaluator: as SingleRun's.

  Raises ConfigError for --mesh_shape on a single run in one process: it has no mesh,
  and a flag that cannot apply says so rather than being ignored."""
  if config.sweep or jax.process_count() > 1:
    return PopulationRun(config, train, evaluator)
  if config.mesh_shape:
    raise ConfigError(f"--mesh_shape={config.mesh_shape} applies to a --sweep or a "
                      "multi-process run (jax.distributed), which spread over a mesh of "
                      "devices; a single run in one process has none. Drop --mesh_shape, "
                      "or train a population with --sweep=NAME=V1,V2,...")
  return SingleRun(config, train, evaluator)


__all__: Sequence[str] = ["Trainee", "SingleRun", "PopulationRun", "make_trainee",
                          "Divergence"]
