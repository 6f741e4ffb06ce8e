"""DCGAN (Radford, Metz & Chintala 2016) sized for 28x28 and 32x32 images.

The guidelines of the paper: strided (transposed) convolutions instead of pooling,
BatchNorm in G (all but the output) and in D (all but the input layer), ReLU in G with
Tanh output, LeakyReLU(0.2) in D, weights N(0, 0.02).

Sizes: the image side is halved while it is even and above 7, which gives the base grid
and the number of stride-2 stages: 32 -> 16 -> 8 -> 4 (base 4, 3 stages) and
28 -> 14 -> 7 (base 7, 2 stages). G mirrors D: z -> Dense(base² · width·2^(stages-1))
-> stages of ConvTranspose(4x4, stride 2) halving the channels -> C channels.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.layers import discriminator_head, sow_features

_INIT = nn.initializers.normal(0.02)
D_NORMS = ("batch", "layer", "none")


def stages(side: int) -> tuple[int, int]:
  """(base side, number of stride-2 stages) for an image side: 28 -> (7, 2), 32 -> (4, 3)."""
  base, n = side, 0
  while base % 2 == 0 and base > 7:
    base //= 2
    n += 1
  return base, n


def check_image_shape(image_shape: tuple[int, int, int]) -> str | None:
  """None if DCGAN fits the shape, else why not (square, and at least one stage)."""
  h, w, _ = image_shape
  if h != w:
    return f"DCGAN needs square images, got {h}x{w}"
  if stages(h)[1] == 0:
    return f"DCGAN needs an even image side above 7, got {h}"
  return None


def _batch_norm(train: bool) -> nn.Module:
  # Flax momentum 0.9 = torch momentum 0.1; eps 1e-5 as torch.
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)


class DCGANGenerator(nn.Module):
  """z [B, latent] -> [B, H, W, C] in [-1, 1]."""

  image_shape: tuple[int, int, int]
  width: int = 64

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    h, _, c = self.image_shape
    base, n = stages(h)
    ch = self.width * 2 ** (n - 1)
    x = nn.Dense(base * base * ch, kernel_init=_INIT)(z)
    x = nn.relu(_batch_norm(train)(x)).reshape((z.shape[0], base, base, ch))
    for _ in range(n - 1):
      ch //= 2
      x = nn.ConvTranspose(ch, (4, 4), strides=(2, 2), padding="SAME",
                           kernel_init=_INIT)(x)
      x = nn.relu(_batch_norm(train)(x))
    x = nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding="SAME", kernel_init=_INIT)(x)
    return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
  """x [B, H, W, C] -> [B] logits. d_norm: 'batch' (Radford), 'layer' (WGAN-GP's
  choice: keeps examples independent), or 'none'; never on the input layer."""

  width: int = 64
  d_norm: str = "batch"
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    _, n = stages(x.shape[1])
    ch = self.width
    for i in range(n):
      x = nn.Conv(ch, (4, 4), strides=(2, 2), padding="SAME", kernel_init=_INIT)(x)
      if i > 0 and self.d_norm == "batch":
        x = _batch_norm(train)(x)
      elif i > 0 and self.d_norm == "layer":
        # Gulrajani et al.'s tflib Layernorm: each example's mean and variance over
        # (H, W, C), eps 1e-5, then a per-channel scale and offset.
        x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1)(x)
      x = nn.leaky_relu(x, 0.2)
      ch *= 2
    x = x.reshape((x.shape[0], -1))
    sow_features(self, x)
    return discriminator_head(x, self.minibatch_kernels, self.minibatch_kernel_dim,
                              lambda k: nn.Dense(k, kernel_init=_INIT))
