"""What a step reads, resolved once from a Config and the GAN: the one source of truth.

A `Config` says how to train (batch size, k, order, schedule, unrolling, feature
matching, EMA decay, loss hyperparameters); the static `GAN` says what is trained
(modules, optimizers, loss, and the two shapes its state is built with: whether it keeps
an EMA copy of G, and how many samples D takes packed together). Where both speak of the
same thing they must agree, or the steps would train something other than what the state
holds: `resolve` refuses a disagreement, naming both values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxgan import losses
from jaxgan.config import Config
from jaxgan.state import GAN


def loss_hparams(config: Config) -> losses.LossHParams:
  """The loss hyperparameters of a run. Plain floats from the Config; a sweep may pass
  the same fields as (vmapped) arrays instead."""
  return losses.LossHParams(label_smoothing=config.label_smoothing,
                            gp_weight=config.gp_weight, clip_value=config.clip_value)


@dataclasses.dataclass(frozen=True)
class StepSettings:
  """Everything the parts of a step read (jaxgan.steps), fixed before tracing.

  The objective parts' registries (jaxgan.steps.terms, jaxgan.steps.augment) are handed
  these settings, the GAN and `config` (the whole Config: a new part reads its own new
  field from it).
  """

  batch_size: int
  num_d_steps: int
  update_order: str
  d_steps_schedule: str
  pack: int
  unroll_steps: int
  feature_matching: bool
  g_ema_decay: float
  hp: losses.LossHParams
  num_classes: int
  config: Any

  def varies(self, name: str) -> bool:
    """Whether a population sweeps the flag `name` (a term reading it as a run-time
    hyperparameter must then be built even where this member's value turns it off)."""
    from jaxgan.config import parse_sweep
    return name in parse_sweep(self.config.sweep)


def resolve(config: Config, gan: GAN) -> StepSettings:
  """The settings of `config` for `gan`.

  Raises:
    ValueError: the GAN and the Config disagree (EMA, packing), or a combination the
      steps cannot run (packing with a conditional GAN, a critic schedule outside
      d_then_g).
  """
  if gan.g_ema != (config.g_ema_decay > 0):
    raise ValueError(
        f"the GAN and the Config disagree on G's EMA: GAN.g_ema={gan.g_ema} but "
        f"Config.g_ema_decay={config.g_ema_decay}; the EMA exists when the decay is > 0 "
        "(state.make_gan(config, ...) builds both from the decay; with "
        "state.gan_from_modules(..., g_ema=True) set Config(g_ema_decay=0.999), say)")
  if gan.pack != config.pack:
    raise ValueError(
        f"the GAN and the Config disagree on packing: GAN.pack={gan.pack} (D's input "
        f"holds {gan.pack} samples per example) but Config.pack={config.pack}; build "
        "the GAN from the same Config (state.make_gan) or pass "
        "state.gan_from_modules(..., pack=Config.pack)")
  if config.pack > 1 and gan.num_classes:
    raise ValueError("packing (pack > 1) does not combine with a conditional GAN")
  if config.d_steps_schedule and config.update_order != "d_then_g":
    raise ValueError(f"d_steps_schedule={config.d_steps_schedule!r} needs "
                     "update_order='d_then_g'")
  return StepSettings(
      batch_size=config.batch_size, num_d_steps=config.num_d_steps,
      update_order=config.update_order, d_steps_schedule=config.d_steps_schedule,
      pack=config.pack, unroll_steps=config.unroll_steps,
      feature_matching=config.feature_matching, g_ema_decay=config.g_ema_decay,
      hp=loss_hparams(config), num_classes=gan.num_classes, config=config)
