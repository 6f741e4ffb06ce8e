"""The toy models of PacGAN (Lin et al. 2018), as in the authors' code
(fjxmlzn/PacGAN, synthetic_data_experiments/2DRing_GAN&PacGAN/pacgan_task.py).

G: z [B, 2] -> 4 x (Linear 400, no bias -> BatchNorm -> ReLU) -> Linear 2 (with bias).
D: 3 x Maxout (200 units x 5 pieces) -> Linear 1 (a logit); its input is the `pack`
   samples of one packed example concatenated, which D's first layer simply sees as
   pack x 2 inputs.
Weights N(0, 0.02²), biases 0 (blocks' IsotropicGaussian(0.02), Constant(0)). BatchNorm:
blocks' epsilon 1e-4 and running averages p <- 0.95 p + 0.05 batch (flax momentum 0.95).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax

from jaxgan.models.layers import discriminator_head, normalized, sow_features

_INIT = nn.initializers.normal(0.02)


class PacGANGenerator(nn.Module):
  image_shape: tuple[int, int, int]
  hidden: tuple[int, ...] = (400, 400, 400, 400)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    x = z
    for width in self.hidden:
      x = nn.Dense(width, use_bias=False, kernel_init=_INIT)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.95, epsilon=1e-4)(x)
      x = nn.relu(x)
    x = nn.Dense(math.prod(self.image_shape), kernel_init=_INIT)(x)
    return x.reshape((z.shape[0],) + tuple(self.image_shape))


class PacGANMaxout(nn.Module):
  """blocks' LinearMaxout: Linear(units x pieces), then the max over the pieces.
  spectral_norm: the Linear spectrally normalised."""

  units: int
  pieces: int
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    z = normalized(nn.Dense(self.units * self.pieces, kernel_init=_INIT),
                   self.spectral_norm, train)(x)
    return z.reshape(z.shape[:-1] + (self.units, self.pieces)).max(axis=-1)


class PacGANDiscriminator(nn.Module):
  """spectral_norm: every linear layer (each maxout's, the head's) spectrally
  normalised."""

  units: int = 200
  pieces: int = 5
  layers: int = 3
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = x.reshape((x.shape[0], -1))
    for _ in range(self.layers):
      x = PacGANMaxout(self.units, self.pieces, self.spectral_norm)(x, train)
    sow_features(self, x)
    return discriminator_head(x, self.minibatch_kernels, self.minibatch_kernel_dim,
                              lambda n: normalized(nn.Dense(n, kernel_init=_INIT),
                                                   self.spectral_norm, train))
