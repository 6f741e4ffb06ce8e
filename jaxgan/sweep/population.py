"""Populations: many configurations of one GAN, trained as one vmapped program.

A sweep such as `--sweep=lr_d=1e-4,2e-4 --sweep=seed=0,1` names values for run-time
hyperparameters; the population is their cartesian product (`config.sweep_members`:
4 members here, the last --sweep varying fastest). Every member is a full `Config`,
validated like a single run.

How a population stays one compiled program:
  * the step is built once, from member 0's config; every swept value lives in an array
    leaf of the state (the optimizers' `opt_state.hyperparams`, or the init key for
    `seed`), so the traced step reads it at run time and never bakes it in;
  * the population state's GANState has a leading axis [num_members, ...] on every
    leaf; the step is `jax.vmap` of one member's step with the dataset unbatched, so all
    members share the one on-device copy of the data;
  * each member keeps its own rng (noise, dropout, data order) and optimizer state.

Divergence is caught inside the compiled step, per member (`GuardedStep`): an update
whose loss, gradients, optimizer updates or BatchNorm statistics are non-finite is
discarded before it is written (the member keeps its last finite state), the step and
the failed checks are recorded in its `Health`, and from then on its updates stay
discarded. The other members compute exactly what they would if it were healthy: no
operation mixes members.

Member i is therefore the single run with member i's config: the same initial state
(exactly) and the same updates (up to float reassociation in batched kernels).

This module is pure: it builds functions and shardings; jaxgan.runtime compiles them.

Extending: a new run-time hyperparameter becomes sweepable by putting it in an array leaf
of GANState that the step reads, a `config.SWEEPABLE` entry, and a setter in SETTERS.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgan import rng
from jaxgan.config import SWEEPABLE, Member
from jaxgan.errors import ConfigError
from jaxgan.state import GAN, GANState
from jaxgan.steps import describe_nonfinite

POP, DATA = "pop", "data"  # The mesh's axis names: members, and each batch.
HEALTHY = -1  # Health.diverged_at of a member that has not diverged.


# --------------------------------------------------------------------------- state
class Health(flax.struct.PyTreeNode):
  """Per member (leaves [P] in a population): `diverged_at`, the step whose update would
  have made its state non-finite (HEALTHY = -1 while finite); `nonfinite`, a bit mask of
  the checks that failed then (steps.GUARD_CHECKS order)."""

  diverged_at: jax.Array
  nonfinite: jax.Array


class PopulationState(flax.struct.PyTreeNode):
  """gan: a GANState whose every leaf is [P, ...]; health: [P] leaves."""

  gan: GANState
  health: Health


def _set_opt_hparam(nets: Sequence[str], key: str):
  """A setter of opt_state.hyperparams[key] (optax inject_hyperparams) of G and/or D."""

  def set_leaf(state: GANState, values: jax.Array) -> GANState:
    for name in nets:
      net = getattr(state, name)
      hyper = dict(net.opt_state.hyperparams)
      old = hyper[key]
      # Same dtype as the single run's leaf, broadcast over the member axis.
      hyper[key] = jnp.asarray(values, old.dtype).reshape(old.shape)
      net = net.replace(opt_state=net.opt_state._replace(hyperparams=hyper))
      state = state.replace(**{name: net})
    return state

  return set_leaf


def _set_state_hparam(key: str):
  """A setter of GANState.hparams[key]: a run-time hyperparameter an objective term reads
  (jaxgan.steps.terms.Term.hparams; the term is built whenever its flag is swept)."""

  def set_leaf(state: GANState, values: jax.Array) -> GANState:
    if key not in state.hparams:
      raise ConfigError(f"--sweep={key}=...: no objective term of this run reads "
                        f"{key!r} (its term is off)")
    hparams = dict(state.hparams)
    old = hparams[key]
    hparams[key] = jnp.asarray(values, old.dtype).reshape(old.shape)
    return state.replace(hparams=hparams)

  return set_leaf


# How each sweepable value enters the population state (None: `seed`, through the init
# key). Keyed like config.SWEEPABLE.
SETTERS: dict[str, Callable[[GANState, jax.Array], GANState] | None] = {
    "seed": None,
    "lr_g": _set_opt_hparam(["g"], "learning_rate"),
    "lr_d": _set_opt_hparam(["d"], "learning_rate"),
    "b1": _set_opt_hparam(["g", "d"], "b1"),
    "b2": _set_opt_hparam(["g", "d"], "b2"),
    "momentum": _set_opt_hparam(["g", "d"], "momentum"),
    "r1_gamma": _set_state_hparam("r1_gamma"),
    "r2_gamma": _set_state_hparam("r2_gamma"),
    "lecam_weight": _set_state_hparam("lecam_weight"),
}
assert set(SETTERS) == set(SWEEPABLE), "every sweepable flag needs a setter"


def _get_opt_hparam(net: str, key: str):
  return lambda state: getattr(state, net).opt_state.hyperparams[key]


# How each sweepable value is read back from a (population) state: its leaf, [P] in a
# population (None: `seed`, which no leaf holds). A flag set on both nets reads G's
# (the setter writes both alike).
GETTERS: dict[str, Callable[[GANState], jax.Array] | None] = {
    "seed": None,
    "lr_g": _get_opt_hparam("g", "learning_rate"),
    "lr_d": _get_opt_hparam("d", "learning_rate"),
    "b1": _get_opt_hparam("g", "b1"),
    "b2": _get_opt_hparam("g", "b2"),
    "momentum": _get_opt_hparam("g", "momentum"),
    "r1_gamma": lambda state: state.hparams["r1_gamma"],
    "r2_gamma": lambda state: state.hparams["r2_gamma"],
    "lecam_weight": lambda state: state.hparams["lecam_weight"],
}
assert set(GETTERS) == set(SETTERS)


def exchange_fn(names: Sequence[str]) -> Callable[..., PopulationState]:
  """`exchange(state, parents [P] int32, values {name: [P] float32}) -> state`: PBT's
  exploit and explore as one function to jit. Member i takes member parents[i]'s whole
  state (G, D, BatchNorm statistics, optimizer states, EMA, objective terms' state,
  health: a gather on the member axis), except its own run key `rng`: a copy then draws
  its own noise and data order rather than replaying its parent's. Then each named
  hyperparameter is written from `values` (a member that keeps its state gets its own
  value back, bit for bit). parents[i] == i for every i is the identity."""
  for name in names:
    if SETTERS[name] is None:
      raise ValueError(f"{name} has no state leaf to exchange")

  def exchange(state: PopulationState, parents: jax.Array,
               values: dict[str, jax.Array]) -> PopulationState:
    moved = jax.tree_util.tree_map(lambda x: jnp.take(x, parents, axis=0), state)
    gan = moved.gan.replace(rng=state.gan.rng)
    for name in names:
      gan = SETTERS[name](gan, values[name])
    return PopulationState(gan=gan, health=moved.health)

  return exchange


def member_seeds(members: Sequence[Member]) -> np.ndarray:
  return np.array([m.config.seed for m in members], np.uint32)


def init_fn(gan: GAN, members: Sequence[Member],
            single_init: Callable[..., GANState] | None = None
            ) -> Callable[..., PopulationState]:
  """`init(images=None)` returning the stacked initial state: leaf [P, ...] == member
  i's single-run init at [i] (gan may come from any member's config: the swept values
  are written per member). `images`: the training split, for a GAN whose init depends
  on data (GAN.needs_data). single_init: one member's init(rng, images) (default
  gan.init; the steps' init adds what the objective terms read, Steps.init). Compile it
  once (jaxgan.runtime.compile)."""
  single_init = gan.init if single_init is None else single_init
  seeds = member_seeds(members)
  names = list(members[0].hparams) if members else []
  values = {n: np.array([m.hparams[n] for m in members], np.float32)
            for n in names if SETTERS[n] is not None}
  num = len(members)

  def init(images: jax.Array | None = None) -> PopulationState:
    keys = jax.vmap(rng.seed_key)(jnp.asarray(seeds))
    state = jax.vmap(single_init, in_axes=(0, None))(keys, images)
    for name, vals in values.items():
      state = SETTERS[name](state, jnp.asarray(vals))
    health = Health(diverged_at=jnp.full((num,), HEALTHY, jnp.int32),
                    nonfinite=jnp.zeros((num,), jnp.int32))
    return PopulationState(gan=state, health=health)

  return init


def member_state(state: PopulationState | GANState, index: int) -> GANState:
  """Member `index` of a population state, as a single-run state."""
  gan = state.gan if isinstance(state, PopulationState) else state
  return jax.tree_util.tree_map(lambda x: x[index], gan)


# --------------------------------------------------------------------------- divergence
class GuardedStep:
  """One member's train step that never lets NaN/Inf into the member's state.

  `__call__(member, images, labels) -> (member, metrics)` on a PopulationState of one
  member ([] leaves). It runs steps.guarded_train_step: every update checks its loss,
  gradients, optimizer updates and BatchNorm statistics before it is applied, and one
  that fails is discarded with every later update of the step (steps.Gate). The first
  time, `health` records the step and the failed checks; from then on the member's
  updates stay discarded (its step counter still advances, so it stays in step with
  the population) and its metrics are NaN.
  """

  def __init__(self, guarded_train_step: Callable):
    self.guarded_train_step = guarded_train_step

  def __call__(self, member: PopulationState, images: jax.Array,
               labels: jax.Array | None = None):
    healthy = member.health.diverged_at == HEALTHY
    gan, metrics, nonfinite = self.guarded_train_step(member.gan, images, labels,
                                                      healthy)
    newly = healthy & (nonfinite != 0)
    health = Health(diverged_at=jnp.where(newly, gan.step, member.health.diverged_at),
                    nonfinite=jnp.where(newly, nonfinite, member.health.nonfinite))
    ok = healthy & (nonfinite == 0)
    metrics = {k: jnp.where(ok, v, jnp.nan) for k, v in metrics.items()}
    return PopulationState(gan=gan, health=health), metrics

  @staticmethod
  def describe(mask: int) -> list[str]:
    """The names of the failed checks in a Health.nonfinite mask."""
    return describe_nonfinite(mask)


def population_step(member_step: Callable) -> Callable:
  """vmap of a member step over the member axis, the dataset shared (in_axes None):
  (state [P, ...], images, labels) -> (state, metrics {name: [P]}). Several steps per
  dispatch are a scan of this (jaxgan.runtime.compile.StepFunctions)."""
  return jax.vmap(member_step, in_axes=(0, None, None), spmd_axis_name=POP)


# --------------------------------------------------------------------------- mesh
def choose_mesh_shape(requested: tuple[int, int] | None, num_devices: int,
                      num_members: int, batch_size: int) -> tuple[int, int]:
  """Validates a (pop, data) shape, or picks one: as many devices on 'pop' as divide
  both the device count and the population, the rest on 'data'.

  Raises ConfigError when the shape does not use exactly `num_devices`, when 'pop' does
  not divide the population, or when 'data' does not divide --batch_size.
  """
  if requested is None:
    for pop in sorted((d for d in range(1, num_devices + 1) if num_devices % d == 0),
                      reverse=True):
      data = num_devices // pop
      if num_members % pop == 0 and batch_size % data == 0:
        return pop, data
    raise ConfigError(
        f"no mesh fits {num_devices} devices, {num_members} sweep members and "
        f"--batch_size={batch_size}: choose --mesh_shape=POP,DATA with POP dividing the "
        "member count and DATA dividing the batch size, POP*DATA = devices.")
  pop, data = requested
  if pop * data != num_devices:
    raise ConfigError(f"--mesh_shape={pop},{data} uses {pop * data} devices but there "
                      f"are {num_devices}; expected POP*DATA = {num_devices}.")
  if num_members % pop:
    raise ConfigError(f"--mesh_shape={pop},{data}: the population axis ({pop}) must "
                      f"divide the number of sweep members ({num_members}).")
  if batch_size % data:
    raise ConfigError(f"--mesh_shape={pop},{data}: the data axis ({data}) must divide "
                      f"--batch_size={batch_size}.")
  return pop, data


def make_mesh(shape: tuple[int, int], devices: Sequence[Any] | None = None) -> Mesh:
  """A ('pop', 'data') mesh over `devices` (default: all devices of all processes)."""
  devices = list(jax.devices() if devices is None else devices)
  return Mesh(np.array(devices, dtype=object).reshape(shape), (POP, DATA))


def shardings(mesh: Mesh) -> dict[str, NamedSharding]:
  """members: leading axis over 'pop'; replicated: the dataset and anything the host
  reads (metrics, samples)."""
  return {"members": NamedSharding(mesh, PartitionSpec(POP)),
          "replicated": NamedSharding(mesh, PartitionSpec())}


def batch_constraint(mesh: Mesh) -> Callable[[jax.Array], jax.Array]:
  """Inside the vmapped step (vmap with spmd_axis_name='pop'), spreads one member's
  batch [B, ...] over the 'data' axis; vmap adds 'pop' for the member axis."""
  sharding = NamedSharding(mesh, PartitionSpec(DATA))
  return lambda batch: jax.lax.with_sharding_constraint(batch, sharding)


def place_dataset(images: np.ndarray, mesh: Mesh) -> jax.Array:
  """The whole split [N, ...], replicated on every device of the mesh (built shard by
  shard, so it also works when the mesh spans several processes)."""
  return jax.make_array_from_callback(images.shape, shardings(mesh)["replicated"],
                                      lambda index: images[index])


def member_noise_fn(gan: GAN, members: Sequence[Member], count: int,
                    stream: int = rng.SAMPLE_GRID) -> Callable[[], jax.Array]:
  """A function returning [P, count, latent] noise: member i's is the single run's
  (`stream` of its seed)."""
  seeds = member_seeds(members)

  def noise() -> jax.Array:
    return jax.vmap(lambda seed: gan.sample_noise(rng.seed_stream(seed, stream), count))(
        jnp.asarray(seeds))

  return noise
