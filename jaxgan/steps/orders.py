"""The update orders and the critic schedules: top-level functions of a step's parts.

An order is `order(parts, state, batches, gate) -> (state, metrics, gate)` for one train
step (state.step not yet advanced), where `batches(i) -> (real, labels)` is the real
batch of D update i of the step (jaxgan.steps.batches). Key streams within a step: D
update i uses fold_in(step_key, i), the G update fold_in(step_key, k) (jaxgan.rng).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.state import GANState
from jaxgan.steps import gate as gate_lib
from jaxgan.steps.terms import GTermContext
from jaxgan.steps.updates import (G_TERMS_STREAM, Parts, constrain_d, d_update, extras,
                                  g_update, step_key, with_aux)


# --------------------------------------------------------------------------- schedules
class FixedCritic:
  """k D updates in every step (--num_d_steps), unrolled in the traced step."""

  def __init__(self, k: int):
    self.k = k

  def first_batch(self, step):
    """The number of D updates before `step` (their batches come first)."""
    return step * self.k

  def d_updates(self, parts: Parts, state: GANState, batches, key, gate):
    """The step's D updates: (state, last metrics, gate, the last (real, labels))."""
    for i in range(self.k):
      real, labels = batches(i)
      state, metrics, gate = d_update(parts, state, real, jax.random.fold_in(key, i),
                                      labels=labels, gate=gate)
    return state, metrics, gate, (real, labels)


class WGANCritic(FixedCritic):
  """The WGAN authors' critic schedule: 100 critic updates for each of the first 25
  generator updates and every 500th one, --num_d_steps (their Diters) otherwise. The
  number depends on the step: a fori_loop, the gate carried through it."""

  def updates_at(self, step):
    return jnp.where((step < 25) | (step % 500 == 0), 100, self.k)

  def first_batch(self, step):
    boosted = jnp.minimum(step, 25) + jnp.maximum(step - 1, 0) // 500
    return boosted * 100 + (step - boosted) * self.k

  def d_updates(self, parts: Parts, state: GANState, batches, key, gate):
    n = self.updates_at(state.step)
    real, labels = batches(0)  # The first outside the loop: it gives the metrics' shape.
    state, metrics, gate = d_update(parts, state, real, jax.random.fold_in(key, 0),
                                    labels=labels, gate=gate)

    def body(i, carry):
      state, _, gate = carry
      real, labels = batches(i)
      return d_update(parts, state, real, jax.random.fold_in(key, i), labels=labels,
                      gate=gate)

    state, metrics, gate = jax.lax.fori_loop(1, n, body, (state, metrics, gate))
    return state, metrics, gate, batches(n - 1)


SCHEDULES = {"": FixedCritic, "wgan": WGANCritic}


# --------------------------------------------------------------------------- orders
def d_then_g(parts: Parts, state: GANState, batches, gate):
  """Algorithm 1: the step's D updates, then one G update against the new D."""
  key = step_key(state)
  state, d_metrics, gate, (real, labels) = parts.schedule.d_updates(
      parts, state, batches, key, gate)
  # Feature matching compares with the last real batch D saw (unused otherwise); a
  # conditional G makes fakes for that batch's labels.
  state, g_metrics, _, gate = g_update(
      parts, state, jax.random.fold_in(key, parts.settings.num_d_steps), real, labels,
      gate)
  return state, {**d_metrics, **g_metrics}, gate


def g_then_d(parts: Parts, state: GANState, batches, gate):
  """PyTorch-GAN's order: G first; D then trains on the fakes G made before its update."""
  key, k = step_key(state), parts.settings.num_d_steps
  real, labels = batches(0)
  state, g_metrics, fake, gate = g_update(parts, state, jax.random.fold_in(key, k), real,
                                          labels, gate)
  for i in range(k):
    real, labels = batches(i)
    state, d_metrics, gate = d_update(parts, state, real, jax.random.fold_in(key, i),
                                      fake if i == 0 else None, labels, gate)
  return state, {**d_metrics, **g_metrics}, gate


def simultaneous(parts: Parts, state: GANState, batches, gate):
  """The paper's code (AdversaryCost2): both gradients from the same minibatch and the
  same fakes, both updates checked, then both committed (one joint update)."""
  nets, key = parts.nets, step_key(state)
  z_key, d_key = jax.random.split(jax.random.fold_in(key, 0))
  real, labels = batches(0)
  fake_key = jax.random.split(d_key, 3)[1]  # d_objective's key for the fake pass.
  state = constrain_d(parts, state)

  def objective(g_params, d_params):
    # stop_gradient routes each loss to its own player.
    fake, g_batch_stats = nets.generate_for_d(state.g.replace(params=g_params), z_key,
                                              labels)
    d_loss, (d_metrics, real_out, fake_out, next_aux) = parts.d_objective(
        d_params, state.d, real, jax.lax.stop_gradient(fake), d_key, labels,
        extras(state))
    # Same dropout keys and statistics: G's loss sees the same D(G(z)), and D(x) for an
    # objective with a real term, as D's loss (unrolled: D after its extra steps).
    frozen = state.d.replace(params=jax.lax.stop_gradient(d_params))
    adversary = parts.adversary(frozen, real, fake, jax.random.fold_in(fake_key, 1),
                                labels, extras(state))
    g_fake_out = nets.discriminate(adversary, state.d.batch_stats, fake, fake_key, labels)
    judge_real = lambda: nets.discriminate(  # noqa: E731
        adversary, state.d.batch_stats, real, jax.random.split(d_key, 3)[0], labels)
    g_loss, g_metrics = parts.g_loss(
        parts.g_objective.loss(g_fake_out, jax.lax.stop_gradient(real_out.features),
                               judge_real),
        GTermContext(g_params, fake, g_fake_out, real, labels,
                     jax.random.fold_in(fake_key, G_TERMS_STREAM), nets, state.hparams))
    return d_loss + g_loss, (d_metrics, g_loss, g_metrics, fake_out.batch_stats,
                             g_batch_stats, next_aux)

  (_, (d_metrics, g_loss, g_metrics, d_batch_stats, g_batch_stats, next_aux)), (
      g_grads, d_grads) = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(
          state.g.params, state.d.params)
  g_update_, g_gate = gate_lib.propose_update(state.g, g_grads, parts.gan.g_tx,
                                              g_batch_stats, gate, "G", g_loss)
  d_update_, d_gate = gate_lib.propose_update(state.d, d_grads, parts.gan.d_tx,
                                              d_batch_stats, gate, "D",
                                              d_metrics["d_loss"])
  gate = g_gate.both(d_gate)
  state = state.replace(g=gate_lib.commit(state.g, g_update_, gate),
                        d=gate_lib.commit(state.d, d_update_, gate))
  return with_aux(state, next_aux, gate), {**d_metrics, "g_loss": g_loss, **g_metrics}, gate


ORDERS = {"d_then_g": d_then_g, "g_then_d": g_then_d, "simultaneous": simultaneous}
