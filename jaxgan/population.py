"""Populations: many configurations of one GAN, trained as one vmapped program.

A sweep such as `--sweep=lr_d=1e-4,2e-4 --sweep=seed=0,1` names values for run-time
hyperparameters; the population is their cartesian product (4 members here, in
`itertools.product` order: the last sweep varies fastest). Every member is a full
`Config` (the base config with the member's values), validated like a single run.

How a population stays one compiled program:
  * the step is built once, from member 0's config; every swept value lives in an array
    leaf of the state (the optimizers' `opt_state.hyperparams`, or the init key for
    `seed`), so the traced step reads it at run time and never bakes it in;
  * the population state is a `GANState` whose every leaf has a leading axis
    [num_members, ...]; the step is `jax.vmap(train_step, in_axes=(0, None))` with the
    dataset unbatched, so all members share the one on-device copy of the data;
  * each member keeps its own rng (and hence its own noise, dropout and data order) and
    its own optimizer state.

Member i is therefore the single run with member i's config: the same initial state
(exactly) and the same updates (up to float reassociation in batched kernels).

Extending: a new run-time hyperparameter (e.g. a loss weight) becomes sweepable by
putting it in an array leaf of GANState that the step reads, and adding a `Sweepable`
entry to SWEEPABLE that writes the members' values into that leaf.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgan.config import FIELDS, Config
from jaxgan.errors import ConfigError
from jaxgan.state import GAN, GANState, compile_once, step_compiler_options
from jaxgan.steps import repeat_step

POP, DATA = "pop", "data"  # The mesh's axis names: members, and each batch.


# --------------------------------------------------------------------------- sweepables
@dataclasses.dataclass(frozen=True)
class Sweepable:
  """A hyperparameter a population can vary, and how its values enter the state.

  set_leaf(state, values) writes `values` ([P] float32, one per member) into the
  population state ([P, ...] leaves); None for `seed`, which enters through the init key.
  requires(config) returns None when the hyperparameter is read at run time under that
  config, else the reason it is not (e.g. SGD's learning rate is a compiled schedule).
  """

  kind: type
  set_leaf: Callable[[GANState, jax.Array], GANState] | None
  requires: Callable[[Config], str | None]


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


def _adam_only(flag: str):
  def requires(config: Config) -> str | None:
    if config.optimizer != "adam":
      return (f"--{flag} is only a run-time hyperparameter with --optimizer=adam; with "
              f"--optimizer={config.optimizer} it is compiled into the step's schedule")
    return None
  return requires


def _constant_sgd_momentum(config: Config) -> str | None:
  if config.optimizer != "sgd":
    return f"--momentum is only used with --optimizer=sgd (got {config.optimizer})"
  if config.momentum_ramp_steps:
    return ("--momentum is a compiled schedule when --momentum_ramp_steps > 0; use "
            "--momentum_ramp_steps=0 to sweep it")
  return None


SWEEPABLE: dict[str, Sweepable] = {
    "seed": Sweepable(int, None, lambda config: None),
    "lr_g": Sweepable(float, _set_opt_hparam(["g"], "learning_rate"), _adam_only("lr_g")),
    "lr_d": Sweepable(float, _set_opt_hparam(["d"], "learning_rate"), _adam_only("lr_d")),
    "b1": Sweepable(float, _set_opt_hparam(["g", "d"], "b1"), _adam_only("b1")),
    "b2": Sweepable(float, _set_opt_hparam(["g", "d"], "b2"), _adam_only("b2")),
    "momentum": Sweepable(float, _set_opt_hparam(["g", "d"], "momentum"),
                          _constant_sgd_momentum),
}


# --------------------------------------------------------------------------- parsing
@dataclasses.dataclass(frozen=True)
class Member:
  """One configuration of a population. hparams: the swept values, in sweep order."""

  index: int
  hparams: dict[str, Any]
  config: Config


def parse_sweep(specs: Sequence[str]) -> dict[str, list[Any]]:
  """['lr_d=1e-4,2e-4', 'seed=0,1'] -> {'lr_d': [1e-4, 2e-4], 'seed': [0, 1]}.

  Raises ConfigError naming the --sweep spec for bad syntax, an unknown flag, a flag that
  changes shapes or code paths, a non-numeric or repeated value, or a repeated name.
  """
  sweep: dict[str, list[Any]] = {}
  for spec in specs:
    name, sep, raw = spec.partition("=")
    name = name.strip().lstrip("-")
    if not sep or not name or not raw.strip():
      raise ConfigError(f"--sweep={spec!r} is invalid: expected NAME=V1,V2,... "
                        "(e.g. --sweep=lr_d=1e-4,2e-4).")
    if name not in FIELDS:
      raise ConfigError(f"--sweep={spec!r}: there is no flag --{name}; sweepable flags "
                        f"are {sorted(SWEEPABLE)}.")
    if name not in SWEEPABLE:
      raise ConfigError(
          f"--sweep={spec!r}: --{name} cannot be swept: it changes shapes, code paths "
          "or the loop, which are compiled into the one program a population shares; "
          f"run separate sweeps for each --{name}. Sweepable flags are "
          f"{sorted(SWEEPABLE)}.")
    if name in sweep:
      raise ConfigError(f"--sweep={spec!r}: --{name} is swept twice; give all its "
                        "values in one --sweep.")
    kind = SWEEPABLE[name].kind
    values = []
    for text in raw.split(","):
      text = text.strip()
      try:
        value = kind(text)
        if kind is int and str(value) != text.lstrip("+"):
          raise ValueError
      except ValueError:
        raise ConfigError(f"--sweep={spec!r}: {text!r} is not "
                          f"{'an integer' if kind is int else 'a number'}.") from None
      if value in values:
        raise ConfigError(f"--sweep={spec!r}: the value {text} is repeated.")
      values.append(value)
    sweep[name] = values
  return sweep


def make_members(base: Config, specs: Sequence[str]) -> list[Member]:
  """The cartesian product of the sweep over `base`, each member validated.

  A sweep of nothing is a population of one member: `base` itself.
  """
  sweep = parse_sweep(specs)
  for name in sweep:
    reason = SWEEPABLE[name].requires(base)
    if reason:
      raise ConfigError(f"--sweep={name}=...: cannot be swept: {reason}.")
  names = list(sweep)
  members = []
  for index, values in enumerate(itertools.product(*(sweep[n] for n in names))):
    hparams = dict(zip(names, values))
    config = dataclasses.replace(base, **hparams)
    try:
      config.validate()
    except ConfigError as e:
      raise ConfigError(f"sweep member {index} {hparams}: {e}") from None
    members.append(Member(index=index, hparams=hparams, config=config))
  return members


# --------------------------------------------------------------------------- state
def init_population(gan: GAN, members: Sequence[Member],
                    sharding: Any = None) -> GANState:
  """The stacked initial state: leaf [P, ...] == member i's single-run init at [i].

  gan: built from any member's config (the swept values are overwritten per member).
  sharding: optional out_shardings pytree/prefix for the jitted init (e.g. the state
  spread over the mesh's 'pop' axis); works unchanged with several processes, since
  every process runs the same jitted init.
  """
  seeds = np.array([m.config.seed for m in members], np.uint32)
  names = list(members[0].hparams) if members else []
  values = {n: np.array([m.hparams[n] for m in members], np.float32)
            for n in names if SWEEPABLE[n].set_leaf is not None}

  def init() -> GANState:
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
    state = jax.vmap(gan.init)(keys)
    for name, vals in values.items():
      state = SWEEPABLE[name].set_leaf(state, jnp.asarray(vals))
    return state

  return compile_once(init, out_shardings=sharding)()


def member_state(state: GANState, index: int) -> GANState:
  """Member `index` of a population state, as a single-run state."""
  return jax.tree_util.tree_map(lambda x: x[index], state)


# --------------------------------------------------------------------------- mesh
def parse_mesh_shape(text: str) -> tuple[int, int] | None:
  """'4,2' -> (4, 2) (pop, data); '' -> None (automatic). Raises ConfigError."""
  if not text.strip():
    return None
  parts = [p.strip() for p in text.replace("x", ",").split(",")]
  try:
    shape = tuple(int(p) for p in parts)
  except ValueError:
    shape = ()
  if len(shape) != 2 or min(shape) < 1:
    raise ConfigError(f"--mesh_shape={text!r} is invalid: expected POP,DATA, two "
                      "integers >= 1 whose product is the device count (e.g. 4,2), "
                      "or empty for an automatic choice.")
  return shape  # type: ignore[return-value]


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
  """members: leading axis over 'pop'; batch: [P, B, ...] over ('pop', 'data');
  replicated: the dataset and anything the host reads (metrics, samples)."""
  return {"members": NamedSharding(mesh, PartitionSpec(POP)),
          "replicated": NamedSharding(mesh, PartitionSpec())}


def batch_constraint(mesh: Mesh) -> Callable[[jax.Array], jax.Array]:
  """Inside the vmapped step (vmap with spmd_axis_name='pop'), spreads one member's
  batch [B, ...] over the 'data' axis; vmap adds 'pop' for the member axis."""
  sharding = NamedSharding(mesh, PartitionSpec(DATA))
  return lambda batch: jax.lax.with_sharding_constraint(batch, sharding)


def place_dataset(images: np.ndarray, mesh: Mesh) -> jax.Array:
  """The whole split [N, H, W, C] uint8, replicated on every device of the mesh (built
  shard by shard, so it also works when the mesh spans several processes)."""
  return jax.make_array_from_callback(images.shape, shardings(mesh)["replicated"],
                                      lambda index: images[index])


def make_population_step(train_step: Callable, mesh: Mesh,
                         steps_per_call: int = 1) -> Callable:
  """jit(vmap(train_step)) over the member axis, the dataset shared (in_axes None).

  (state [P, ...] over 'pop', images replicated) -> (state, metrics {name: [P]}
  replicated, so every process can read them). The state is donated.
  steps_per_call: n > 1 runs n train steps per dispatch (steps.repeat_step's lax.scan,
  inside the vmap) and returns the last step's metrics; the same updates as n calls.
  """
  sh = shardings(mesh)
  step = repeat_step(train_step, steps_per_call)
  return jax.jit(jax.vmap(step, in_axes=(0, None), spmd_axis_name=POP),
                 in_shardings=(sh["members"], sh["replicated"]),
                 out_shardings=(sh["members"], sh["replicated"]), donate_argnums=0,
                 compiler_options=step_compiler_options())
