"""One update of D and one update of G, from the parts of a step.

`Parts` holds what make_steps resolved for a run; the update orders (jaxgan.steps.orders)
compose these two functions. Each takes the gate of its step and returns it (with
UNGATED, no check is computed).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

from jaxgan import rng as rng_lib
from jaxgan.state import GAN, GANState
from jaxgan.steps import gate as gate_lib
from jaxgan.steps.gate import UNGATED
from jaxgan.steps.nets import Nets
from jaxgan.steps.terms import GObjective, GTermContext

Array = jax.Array

# G terms' key: a fold_in of the key of G's D pass (1 is the unrolled D's).
G_TERMS_STREAM = 2


class Parts(NamedTuple):
  """A run's step, as parts: settings (StepSettings), the GAN, the forward passes,
  D's objective and constraint, G's objective and terms, the D G plays against, the
  critic schedule, the update order and the EMA (jaxgan.steps.make_steps builds it)."""

  settings: Any
  gan: GAN
  nets: Nets
  d_objective: Callable
  d_constraint: Callable
  g_objective: GObjective
  g_loss: Callable
  adversary: Callable
  schedule: Any
  order: Callable
  ema: Any
  terms: list  # Every active D and G term (terms.ActiveTerm): what the state must hold.


def step_key(state: GANState) -> Array:
  """The key of the state's current step (jaxgan.rng.STEP)."""
  return rng_lib.step_key(state.rng, state.step)


def constrain_d(parts: Parts, state: GANState) -> GANState:
  return state.replace(d=state.d.replace(params=parts.d_constraint(state.d.params)))


def extras(state: GANState) -> tuple[Any, Any]:
  """What the objective terms read from the state: (hparams, aux)."""
  return state.hparams, state.aux


def with_aux(state: GANState, next_aux: dict, gate) -> GANState:
  """The terms' next state written with their update (kept where the gate closed)."""
  if not next_aux:
    return state
  return state.replace(aux=gate.keep({**state.aux, **next_aux}, state.aux))


def d_update(parts: Parts, state: GANState, real: Array, rng: Array,
             fake: Array | None = None, labels: Array | None = None, gate=UNGATED):
  """One D update, G fixed: (state, metrics, gate). fake: D's fake batch; None: made
  from fresh noise with G in train mode (G's state untouched)."""
  z_key, d_key = jax.random.split(rng)
  state = constrain_d(parts, state)
  if fake is None:
    fake, _ = parts.nets.generate_for_d(state.g, z_key, labels, real.shape[0])
  fake = jax.lax.stop_gradient(fake)
  grads, (metrics, _, fake_out, next_aux) = jax.grad(parts.d_objective, has_aux=True)(
      state.d.params, state.d, real, fake, d_key, labels, extras(state))
  d, gate = gate_lib.apply_update(state.d, grads, parts.gan.d_tx, fake_out.batch_stats,
                                  gate, "D", metrics["d_loss"])
  return with_aux(state.replace(d=d), next_aux, gate), metrics, gate


def g_update(parts: Parts, state: GANState, rng: Array, real: Array | None = None,
             labels: Array | None = None, gate=UNGATED):
  """One G update, D fixed: (state, metrics, the fakes it was computed on, gate)."""
  z_key, drop_key, feat_key = jax.random.split(rng, 3)
  target = parts.g_objective.target(parts.nets, state.d, real, feat_key, labels)
  unroll_key = jax.random.fold_in(drop_key, 1)

  def objective(g_params):
    fake, batch_stats = parts.nets.generate_for_d(state.g.replace(params=g_params),
                                                  z_key, labels)
    d_params = parts.adversary(state.d, real, fake, unroll_key, labels, extras(state))
    fake_out = parts.nets.discriminate(d_params, state.d.batch_stats, fake, drop_key,
                                       labels)
    # The real batch's pass (an objective with a real term), with the target's key.
    judge_real = lambda: parts.nets.discriminate(  # noqa: E731
        d_params, state.d.batch_stats, real, feat_key, labels)
    g_loss, metrics = parts.g_loss(
        parts.g_objective.loss(fake_out, target, judge_real),
        GTermContext(g_params, fake, fake_out, real, labels,
                     jax.random.fold_in(drop_key, G_TERMS_STREAM), parts.nets,
                     state.hparams))
    return g_loss, (fake, batch_stats, metrics)

  (g_loss, (fake, batch_stats, metrics)), grads = jax.value_and_grad(
      objective, has_aux=True)(state.g.params)
  g, gate = gate_lib.apply_update(state.g, grads, parts.gan.g_tx, batch_stats, gate, "G",
                                  g_loss)
  return state.replace(g=g), {"g_loss": g_loss, **metrics}, fake, gate
