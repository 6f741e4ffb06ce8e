"""The real batches of a step: gathered from the dataset on the device (train_step), or
given by the caller (batch_step). Either way `batches(i) -> (real, labels)` is the real
batch of D update i of the step: [B, H, W, C] float32 in the pixel range (packed:
[B, H, W, m*C]) and its labels [B] (None when unconditional)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxgan import data
from jaxgan import rng as rng_lib
from jaxgan.state import GANState

Array = jax.Array


def data_key(state: GANState) -> Array:
  """The batch-order key of the state's run (jaxgan.rng.DATA)."""
  return rng_lib.data_key(state.rng)


def pack_batch(batch: Array, pack: int) -> Array:
  """[m*B, H, W, C] -> [B, H, W, m*C]: sample i of packed example b is batch[i*B + b]."""
  if pack == 1:
    return batch
  return jnp.concatenate(jnp.split(batch, pack, axis=0), axis=-1)


def _identity(batch: Array) -> Array:
  return batch


class Feed:
  """Where a step's real batches come from (parts: jaxgan.steps.updates.Parts).

  constrain_batch: applied to each real batch (a population spreads it over a device
  mesh's 'data' axis)."""

  def __init__(self, parts, num_examples: int,
               constrain_batch: Callable[[Array], Array] | None = None):
    self.parts, self.num_examples = parts, num_examples
    self.settings, self.gan = parts.settings, parts.gan
    self.constrain = constrain_batch or _identity
    self._labels_of = ((lambda labels, idx: jnp.take(labels, idx, axis=0))
                       if self.gan.num_classes else (lambda labels, idx: None))

  def from_dataset(self, state: GANState, images: Array, labels: Array | None):
    """batches(i) over the whole split images [N, H, W, C] uint8 (labels [N] int32),
    in the run's batch order (data.batch_indices, the critic schedule's numbering)."""
    s = self.settings

    def batches(i):
      idx = data.batch_indices(data_key(state),
                               self.parts.schedule.first_batch(state.step) + i,
                               self.num_examples, s.batch_size * s.pack)
      batch = pack_batch(data.gather_batch(images, idx, self.gan.pixel_range), s.pack)
      return self.constrain(batch), self._labels_of(labels, idx)
    return batches

  def from_caller(self, real: Array, labels: Array | None):
    """batches(i) over real [k, B*m, H, W, C] (or [B*m, H, W, C] when k == 1; m is the
    packing, 1 without), labels [k, B] / [B]."""
    real, labels = self._check_caller_batches(real, labels)

    def batches(i):
      batch = pack_batch(real[i].astype(jnp.float32), self.settings.pack)
      return self.constrain(batch), (labels[i] if self.gan.num_classes else None)
    return batches

  def _check_caller_batches(self, real: Array, labels: Array | None):
    s, shape = self.settings, tuple(self.gan.image_shape)
    k, rows = s.num_d_steps, s.batch_size * s.pack
    if s.d_steps_schedule:
      raise ValueError(f"batch_step takes a fixed number of D updates per step; "
                       f"d_steps_schedule={s.d_steps_schedule!r} is for train_step")
    if real.ndim == len(shape) + 1:
      if k != 1:
        raise ValueError(f"batch_step with num_d_steps={k} takes the k real batches of "
                         f"one step, [{k}, B, H, W, C]; got shape {real.shape}")
      real, labels = real[None], None if labels is None else labels[None]
    if real.ndim != len(shape) + 2 or real.shape[0] != k or (
        real.shape[1] != rows or tuple(real.shape[2:]) != shape):
      raise ValueError(f"batch_step expects real [{k}, {rows}, "
                       f"{', '.join(map(str, shape))}] (k = num_d_steps, "
                       f"B{' * pack' if s.pack > 1 else ''} = {rows}), got "
                       f"shape {tuple(real.shape)}")
    if self.gan.num_classes and labels is None:
      raise ValueError("a conditional GAN's batch_step needs the real batches' labels")
    return real, labels
