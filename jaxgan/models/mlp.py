"""PyTorch-GAN implementations/gan/gan.py's MLP generator and discriminator."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.layers import TorchLinear, discriminator_head, sow_features


class MLPGenerator(nn.Module):
  """PyTorch-GAN gan.py's generator: 100→128→256→512→1024→784, Tanh.

  BatchNorm1d(out, 0.8) there passes 0.8 as *eps* (a known quirk, kept); torch's
  momentum 0.1 is Flax's momentum 0.9. The first hidden layer has no BatchNorm.
  """

  image_shape: tuple[int, int, int]
  hidden: tuple[int, ...] = (128, 256, 512, 1024)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    x = z
    for i, width in enumerate(self.hidden):
      x = TorchLinear(width)(x)
      if i > 0:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=0.8)(x)
      x = nn.leaky_relu(x, 0.2)
    x = TorchLinear(math.prod(self.image_shape))(x)
    return jnp.tanh(x).reshape((z.shape[0],) + tuple(self.image_shape))


class MLPDiscriminator(nn.Module):
  """PyTorch-GAN gan.py's discriminator: 784→512→256→1, LeakyReLU(0.2); returns logits."""

  hidden: tuple[int, ...] = (512, 256)
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden:
      x = nn.leaky_relu(TorchLinear(width)(x), 0.2)
    sow_features(self, x)
    return discriminator_head(x, self.minibatch_kernels, self.minibatch_kernel_dim,
                              TorchLinear)
