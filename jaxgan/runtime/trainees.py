"""What the loop trains: a single run or a population, behind one interface.

The loop (jaxgan.runtime.loop) never asks which of the two it holds. A trainee gives it:
  * `members`: one `config.Member` per configuration (a single run: one, no tags);
    `tags(i)` for member i's metrics records and `subdir(i)` for its sample/eval files;
  * `compile(...)`, then `initial_state(images)`: the train step compiled from shapes
    first (peak RSS), then the state from the seed (and the images, for a GAN whose
    init depends on data);
  * `step_fns.advance(...)`: the compiled step (the state donated), one or n steps;
  * `health(step, state, metrics)`: the finite check. A single run raises Diverged (exit
    3) on any NaN/Inf. A population's step already kept each diverged member at its last
    finite state (jaxgan.sweep.population.GuardedStep): this reports the members that
    diverged since the last check and raises Diverged only when all have;
  * `per_member(metrics)`: the step's metrics as one host dict per healthy member;
  * `sample(state, z)`: images [P, n, ...] of every member; `fixed_noise(count)`;
  * `evaluate(state, step, workdir)`: per-member evaluation scalars (--eval_every).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import jax
import numpy as np
from absl import logging

from jaxgan import rng
from jaxgan.config import Config, Member, parse_mesh_shape, sweep_members
from jaxgan.data import Dataset
from jaxgan.errors import Diverged
from jaxgan.eval import members as eval_members
from jaxgan.runtime import evaluation, guard as guard_lib
from jaxgan.runtime.compile import (StepFunctions, compile_lowered_once, compile_once,
                                    release_freed_memory)
from jaxgan.state import make_gan
from jaxgan.steps import make_steps
from jaxgan.sweep import population

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


class SingleRun:
  """One configuration in one process."""

  is_population = False

  def __init__(self, config: Config, train: Dataset):
    self.config = config
    self.members = [Member(index=0, hparams={}, config=config)]
    self.gan = make_gan(config, train.image_shape,
                        train.num_classes if train.labels is not None else 0)
    self.steps = make_steps(config, self.gan, train.num_examples)
    self.step_fns = StepFunctions(self.steps.train_step, config.steps_per_call)
    self._seed_key = rng.seed_key(config.seed)
    # A data-dependent init (minibatch discrimination, the paper's output bias) reads the
    # training images; the others compile without them.
    self._init = (jax.jit(self.gan.init).lower(self._seed_key, shape_of(train.images))
                  if self.gan.needs_data else jax.jit(self.gan.init).lower(self._seed_key))
    self._sample = jax.jit(self.steps.sample)
    self._evaluate = evaluation.make_training_eval(config, self.gan, self.steps.sample,
                                                   train)
    self.writes = True

  def tags(self, index: int) -> dict[str, Any]:
    return {}

  def subdir(self, index: int) -> str:
    return ""

  def compile(self, images: np.ndarray, labels: np.ndarray | None,
              multi: bool = True) -> None:
    self.step_fns.compile(self._init.out_info, shape_of(images),
                          shape_of(labels) if self.gan.num_classes else None, multi)

  def initial_state(self, images: np.ndarray | None = None) -> Any:
    """The state at step 0; `images` (the training split) for a GAN whose init depends
    on data (GAN.needs_data)."""
    init = compile_lowered_once(self._init)
    if self.gan.needs_data:
      if images is None:
        raise ValueError("this GAN's initial state depends on the training images")
      return init(self._seed_key, images)
    return init(self._seed_key)

  def place_data(self, images: np.ndarray, labels: np.ndarray | None):
    # Labels go to the device only for a conditional GAN.
    return (jax.device_put(images),
            jax.device_put(labels) if self.gan.num_classes else None)

  def health(self, step: int, state: Any, metrics: Any,
             last_good_step: int | None) -> list[Divergence]:
    guard_lib.check_finite(step, state, metrics, last_good_step)
    return []

  def per_member(self, metrics: Any) -> dict[int, dict[str, float]]:
    return {0: {k: float(v) for k, v in jax.device_get(metrics).items()}}

  def fixed_noise(self, count: int) -> jax.Array:
    # One small program compiled once (eager ops would each compile on their own).
    key = rng.seed_stream(self.config.seed, rng.SAMPLE_GRID)
    return compile_once(self.gan.sample_noise, key, count, static_argnums=1)(key)[None]

  def sample(self, state: Any, z: jax.Array, labels: np.ndarray | None) -> np.ndarray:
    return np.asarray(self._sample(state, z[0], labels))[None]

  def evaluate(self, state: Any, step: int, workdir: str) -> dict[int, dict[str, float]]:
    return {0: self._evaluate(state, workdir)} if self._evaluate else {}

  def restored(self, state: Any) -> None:
    del state

  def diverged_at(self, state: Any, metrics: Any) -> np.ndarray:
    return np.full((1,), -1, np.int64)


class PopulationRun:
  """The members of --sweep (or one member on several processes) as one program."""

  is_population = True

  def __init__(self, config: Config, train: Dataset):
    self.config = config
    self.members = sweep_members(config)
    mesh_shape = population.choose_mesh_shape(
        parse_mesh_shape(config.mesh_shape), jax.device_count(), len(self.members),
        config.batch_size)
    self.mesh = population.make_mesh(mesh_shape)
    self.mesh_shape = mesh_shape
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
    init = jax.jit(population.init_fn(self.gan, self.members),
                   out_shardings=sh["members"])
    self._init = (init.lower(shape_of(train.images)) if self.gan.needs_data
                  else init.lower())
    self._sample = jax.jit(jax.vmap(self.steps.sample, in_axes=(0, 0, None)),
                           out_shardings=sh["replicated"])
    self._eval = None
    if config.eval_every:
      self._eval = eval_members.PopulationEval(
          self.members, self.gan, self.steps.sample,
          evaluation.make_evaluator(config, train), out_sharding=sh["replicated"])
    self.writes = jax.process_index() == 0  # Process 0 writes logs, samples, tables.
    self._reported: set[int] = set()

  def tags(self, index: int) -> dict[str, Any]:
    return {"member": index, **self.members[index].hparams}

  def subdir(self, index: int) -> str:
    return f"member_{index}"

  def compile(self, images: np.ndarray, labels: np.ndarray | None,
              multi: bool = True) -> None:
    self.step_fns.compile(self._init.out_info, shape_of(images),
                          shape_of(labels) if self.gan.num_classes else None, multi)

  def initial_state(self, images: np.ndarray | None = None) -> Any:
    init = compile_lowered_once(self._init)
    if self.gan.needs_data:
      if images is None:
        raise ValueError("this GAN's initial state depends on the training images")
      return init(images)
    return init()

  def place_data(self, images: np.ndarray, labels: np.ndarray | None):
    placed = population.place_dataset(images, self.mesh)
    release_freed_memory()
    return placed, (population.place_dataset(labels, self.mesh)
                    if self.gan.num_classes else None)

  def restored(self, state: Any) -> None:
    """Members that had diverged before the checkpoint were reported then."""
    self._reported |= {int(i) for i in np.flatnonzero(self.diverged_at(state, None) >= 0)}

  def diverged_at(self, state: Any, metrics: Any) -> np.ndarray:
    """[P] the step after which each member diverged (-1: healthy)."""
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

  def per_member(self, metrics: Any) -> dict[int, dict[str, float]]:
    values = host(metrics)
    return {m.index: {k: float(v[m.index]) for k, v in values.items()}
            for m in self.members if m.index not in self._reported}

  def fixed_noise(self, count: int) -> jax.Array:
    return compile_once(population.member_noise_fn(self.gan, self.members, count),
                        out_shardings=self._sh["members"])()

  def sample(self, state: Any, z: jax.Array, labels: np.ndarray | None) -> np.ndarray:
    return host(self._sample(state.gan, z, labels))

  def evaluate(self, state: Any, step: int, workdir: str) -> dict[int, dict[str, float]]:
    if self._eval is None:
      return {}
    generated = self._eval.generate(state.gan)  # Every process: a collective.
    if not self.writes:
      return {}
    results = self._eval.evaluate(generated, step, self.config.data_name,
                                  self.config.model, workdir)
    return {m.index: eval_members.scalars(r) for m, r in zip(self.members, results)
            if m.index not in self._reported}


def make_trainee(config: Config, train: Dataset) -> SingleRun | PopulationRun:
  """A population for --sweep or several processes (its state and batches then span all
  devices), else a single run."""
  if config.sweep or jax.process_count() > 1:
    return PopulationRun(config, train)
  return SingleRun(config, train)


def member_paths(trainee: Any, workdir: str, kind: str, step: int) -> list[str]:
  return [os.path.join(workdir, kind, trainee.subdir(m.index), f"step_{step}.png")
          for m in trainee.members]


__all__: Sequence[str] = ["SingleRun", "PopulationRun", "make_trainee", "Divergence"]
