"""G's exponential moving average (--g_ema_decay > 0): updated after each train step,
used for samples and evaluation."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.state import GANState, NetState

Array = jax.Array


def ema_decay_at(decay: float, step: Array) -> Array:
  """The EMA decay used after update `step` (0-based): min(decay, (1 + t)/(10 + t)).

  The warm-up is tf.train.ExponentialMovingAverage's num_updates rule: early averages
  are not dominated by G's random initialisation.
  """
  t = step.astype(jnp.float32)
  return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def ema_update(ema, new, decay: Array):
  """ema ← decay·ema + (1 − decay)·new, leaf by leaf (params and BatchNorm stats)."""
  return jax.tree_util.tree_map(lambda e, n: decay * e + (1.0 - decay) * n, ema, new)


class GeneratorEMA:
  """The EMA of G's params and BatchNorm statistics in state.g_ema."""

  def __init__(self, decay: float):
    self.decay = decay

  def update(self, state: GANState, gate) -> GANState:
    """After the step's updates; a member whose gate closed keeps its EMA too."""
    new = {"params": state.g.params, "batch_stats": state.g.batch_stats}
    decay = gate.keep(ema_decay_at(self.decay, state.step), 1.0)
    return state.replace(g_ema=ema_update(state.g_ema, new, decay))

  def generator(self, state: GANState) -> NetState:
    """The generator samples come from: the EMA."""
    return state.g.replace(**state.g_ema)


class NoEMA:
  """No EMA (--g_ema_decay=0): samples come from G itself."""

  def update(self, state: GANState, gate) -> GANState:
    return state

  def generator(self, state: GANState) -> NetState:
    return state.g


def make_ema(settings) -> GeneratorEMA | NoEMA:
  return GeneratorEMA(settings.g_ema_decay) if settings.g_ema_decay > 0 else NoEMA()
