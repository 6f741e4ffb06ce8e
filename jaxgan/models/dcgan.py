"""DCGAN (Radford, Metz & Chintala 2016) sized for 28x28 and 32x32 images.

The guidelines of the paper: strided (transposed) convolutions instead of pooling,
BatchNorm in G (all but the output) and in D (all but the input layer), ReLU in G with
Tanh output, LeakyReLU(0.2) in D, weights N(0, 0.02).

Sizes: the image side is halved while it is even and above 7, which gives the base grid
and the number of stride-2 stages: 32 -> 16 -> 8 -> 4 (base 4, 3 stages) and
28 -> 14 -> 7 (base 7, 2 stages). G mirrors D: z -> Dense(base² · width·2^(stages-1))
-> stages of ConvTranspose(4x4, stride 2) halving the channels -> C channels.

The stride-2 layers compute flax's nn.ConvTranspose / nn.Conv(4x4, stride 2, SAME) with
their parameters (names, shapes, kernel layout: checkpoints are unchanged), written as
stride-1 2x2 convolutions on 4x the channels (sub-pixel / space-to-depth) and computed
as im2col matmuls (`impl="dot"`, the default): XLA:CPU runs the transposed convolutions
and the input gradients of strided convolutions as slow lhs-dilated convolutions, and
the matmuls as YNNPACK dots (measured: docs/performance.md, "DCGAN on CPU"). Equal to the
flax layers within 1e-5 on outputs and gradients (tests/test_dcgan_impl.py).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.layers import discriminator_head, normalized, sow_features

_INIT = nn.initializers.normal(0.02)
D_NORMS = ("batch", "layer", "none", "spectral")
# How the stride-2 4x4 layers are computed (the same function and parameters):
# "dot" im2col matmuls, "conv" stride-1 lax convolutions, "xla" flax's nn.ConvTranspose / nn.Conv.
IMPLS = ("dot", "conv", "xla")


def _pad1(x: jax.Array) -> jax.Array:
  return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def _conv2x2(x: jax.Array, kernel: jax.Array, impl: str) -> jax.Array:
  """VALID stride-1 2x2 convolution, NHWC x [B, H, W, I], kernel [2, 2, I, O]."""
  if impl == "dot":
    b, h, w, _ = x.shape
    cols = jnp.concatenate([x[:, dy:h - 1 + dy, dx:w - 1 + dx]
                            for dy in (0, 1) for dx in (0, 1)], axis=-1)
    return cols @ kernel.reshape(-1, kernel.shape[-1])
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


class SubpixelConvTranspose(nn.Module):
  """nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME") as a sub-pixel
  convolution: a stride-1 2x2 convolution of the input padded by 1 to 4 x features
  channels (one block per output phase), then depth-to-space."""

  features: int
  kernel_init: object = _INIT
  impl: str = "dot"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, n, m, ci = x.shape
    co = self.features
    kernel = self.param("kernel", self.kernel_init, (4, 4, ci, co))
    bias = self.param("bias", nn.initializers.zeros, (co,))
    k2 = kernel.reshape(2, 2, 2, 2, ci, co).transpose(0, 2, 4, 1, 3, 5)
    out = _conv2x2(_pad1(x), k2.reshape(2, 2, ci, 4 * co), self.impl)
    out = out.reshape(b, n + 1, m + 1, 2, 2, co)
    y = jnp.stack([jnp.stack([out[:, a:a + n, c:c + m, a, c] for c in (0, 1)], axis=3)
                   for a in (0, 1)], axis=2)
    return y.reshape(b, 2 * n, 2 * m, co) + bias


class SpaceToDepthConv(nn.Module):
  """nn.Conv(features, (4, 4), strides=(2, 2), padding="SAME") on an even-sided input
  as space-to-depth of the input padded by 1, then a stride-1 2x2 convolution."""

  features: int
  kernel_init: object = _INIT
  impl: str = "dot"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, ci = x.shape
    co = self.features
    kernel = self.param("kernel", self.kernel_init, (4, 4, ci, co))
    bias = self.param("bias", nn.initializers.zeros, (co,))
    hp, wp = h // 2 + 1, w // 2 + 1
    s = _pad1(x).reshape(b, hp, 2, wp, 2, ci).transpose(0, 1, 3, 2, 4, 5)
    k2 = kernel.reshape(2, 2, 2, 2, ci, co).transpose(0, 2, 1, 3, 4, 5)
    return _conv2x2(s.reshape(b, hp, wp, 4 * ci), k2.reshape(2, 2, 4 * ci, co),
                    self.impl) + bias


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
  impl: str = "dot"

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    h, _, c = self.image_shape
    base, n = stages(h)
    ch = self.width * 2 ** (n - 1)
    x = nn.Dense(base * base * ch, kernel_init=_INIT)(z)
    x = nn.relu(_batch_norm(train)(x)).reshape((z.shape[0], base, base, ch))
    for _ in range(n - 1):
      ch //= 2
      x = self._up(ch, _)(x)
      x = nn.relu(_batch_norm(train)(x))
    x = self._up(c, n - 1)(x)
    return jnp.tanh(x)

  def _up(self, ch, i):
    if self.impl == "xla":
      return nn.ConvTranspose(ch, (4, 4), strides=(2, 2), padding="SAME",
                              kernel_init=_INIT, name=f"ConvTranspose_{i}")
    return SubpixelConvTranspose(ch, impl=self.impl, name=f"ConvTranspose_{i}")


class DCGANDiscriminator(nn.Module):
  """x [B, H, W, C] -> [B] logits. d_norm: 'batch' (Radford), 'layer' (WGAN-GP's
  choice: keeps examples independent), or 'none', never on the input layer; or
  'spectral' (Miyato et al. 2018's standard CNN: every convolution and the head
  spectrally normalised, no other normalisation)."""

  width: int = 64
  d_norm: str = "batch"
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5
  impl: str = "dot"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    _, n = stages(x.shape[1])
    ch = self.width
    spectral = self.d_norm == "spectral"
    for i in range(n):
      if self.impl == "xla":
        conv = nn.Conv(ch, (4, 4), strides=(2, 2), padding="SAME", kernel_init=_INIT,
                       name=f"Conv_{i}")
      else:
        conv = SpaceToDepthConv(ch, impl=self.impl, name=f"Conv_{i}")
      x = normalized(conv, spectral, train)(x)
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
                              lambda k: normalized(nn.Dense(k, kernel_init=_INIT),
                                                   spectral, train))
