"""Small ReLU MLPs for the 1-D and 2-D toy datasets."""

from __future__ import annotations

import math

import flax.linen as nn
import jax

from jaxgan.models.layers import discriminator_head, normalized, sow_features


class ToyGenerator(nn.Module):
  """z -> ReLU 128 -> ReLU 128 -> linear [B, *image_shape] (unbounded: toy data is not scaled).

  The size of the unrolled-GAN and VEEGAN 2-D mixture experiments.
  """

  image_shape: tuple[int, int, int]
  hidden: tuple[int, ...] = (128, 128)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train
    x = z
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    x = nn.Dense(math.prod(self.image_shape))(x)
    return x.reshape((z.shape[0],) + tuple(self.image_shape))


class ToyDiscriminator(nn.Module):
  """x -> ReLU 128 -> ReLU 128 (features) -> 1 logit. spectral_norm: every linear layer,
  the head too, spectrally normalised."""

  hidden: tuple[int, ...] = (128, 128)
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    def linear(width):
      return normalized(nn.Dense(width), self.spectral_norm, train)
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden:
      x = nn.relu(linear(width)(x))
    sow_features(self, x)
    return discriminator_head(x, self.minibatch_kernels, self.minibatch_kernel_dim,
                              linear)
