"""SNGAN's residual generator and discriminator (Miyato et al. 2018), as mimicry's SNGAN
32 (kwotsin/mimicry torch_mimicry/nets/sngan/sngan_32.py, modules/resblocks.py), a
PyTorch port of the authors' Chainer code (pfnet-research/sngan_projection
gen_models/resnet_32.py, dis_models/snresnet_32.py, */resblocks.py).

G: z -> Linear -> [base, base, width] -> n x GBlock(up) -> BN -> ReLU -> conv3x3 -> tanh.
   GBlock: BN -> ReLU -> upsample -> conv3x3 -> BN -> ReLU -> conv3x3, plus the shortcut
   upsample -> conv1x1 (a learnable shortcut whenever it upsamples or changes width).
D: DBlockOptimized (conv3x3 -> ReLU -> conv3x3 -> avgpool, shortcut avgpool -> conv1x1)
   -> DBlock(down) -> DBlock -> DBlock -> ReLU -> global sum pooling -> Linear -> logit.
   DBlock: ReLU -> conv3x3 -> ReLU -> conv3x3 [-> avgpool], shortcut conv1x1 [-> avgpool]
   when it downsamples or changes width, the identity otherwise.
   With spectral_norm (--d_norm=spectral, SNGAN) every convolution and the head are
   spectrally normalised (layers.SpectralNorm, torch's spectral_norm); D has no other
   normalisation.

Sizes. 32 px (SNGAN's CIFAR-10 model): G 4x4 -> 8 -> 16 -> 32 (three GBlocks, width
256), D 32 -> 16 -> 8 -> 8 -> 8 (width 128), z of 128 (the flagfiles' --latent_dim). Any
square side divisible by 4 with G's base grid from dcgan.stages (halve while even and
above 7): 28 px (Fashion-MNIST) is G 7x7 -> 14 -> 28 (two GBlocks) and D 28 -> 14 -> 7 ->
7 -> 7, the same blocks and widths; D always downsamples twice, as at 32 px.

Initialisation as mimicry: xavier_uniform with gain √2 for the blocks' 3x3 convolutions,
gain 1 for the shortcuts, G's first Linear and last conv, and D's Linear; biases keep
torch's default U(±1/√fan_in); BatchNorm scale 1, offset 0, torch's eps 1e-5 and momentum
0.1 (flax 0.9). G's Linear output is read as torch's view [B, width, base, base] (then
NHWC), so a torch state dict maps onto these parameters by a layout change alone.

Where this follows the authors' Chainer code rather than mimicry: mimicry's DBlock
applies an in-place ReLU (nn.ReLU(True)) to its input before its shortcut reads it, so
its shortcut sees ReLU(x); the authors' Block (and mimicry's stated aim, "follow the
official SNGAN Chainer implementation as closely as possible") adds the shortcut of x
itself, as here. Where both differ, mimicry is followed and the field names the authors'
choice: G upsamples bilinearly (align_corners=False; the authors: nearest,
`upsample="nearest"`); biases as torch (the authors: zero, and no bias on D's Linear).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models import dcgan
from jaxgan.models.layers import discriminator_head, normalized, sow_features, uniform_init

UPSAMPLES = ("bilinear", "nearest")


def xavier_uniform(gain: float):
  """torch.nn.init.xavier_uniform_(gain): U(±gain·√(6 / (fan_in + fan_out))), with the
  fans of a [in, out] or HWIO kernel (receptive field included)."""
  return nn.initializers.variance_scaling(gain ** 2, "fan_avg", "uniform")


class Linear(nn.Module):
  """torch nn.Linear, weight xavier_uniform(gain), bias torch's U(±1/√fan_in)."""

  features: int
  gain: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    kernel = self.param("kernel", xavier_uniform(self.gain), (fan_in, self.features))
    bias = self.param("bias", uniform_init(1.0 / math.sqrt(fan_in)), (self.features,))
    return x @ kernel + bias


class Conv(nn.Module):
  """torch nn.Conv2d(k, stride 1, padding k // 2) on NHWC, kernel HWIO
  xavier_uniform(gain), bias torch's U(±1/√(in·k·k))."""

  features: int
  size: int
  gain: float

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1] * self.size ** 2
    kernel = self.param("kernel", xavier_uniform(self.gain),
                        (self.size, self.size, x.shape[-1], self.features))
    bias = self.param("bias", uniform_init(1.0 / math.sqrt(fan_in)), (self.features,))
    pad = self.size // 2
    y = jax.lax.conv_general_dilated(x, kernel, (1, 1), ((pad, pad), (pad, pad)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


def _shift(x: jax.Array, axis: int, step: int) -> jax.Array:
  """x moved by one along `axis`, the edge repeated: x[i - 1] (step -1), x[i + 1] (+1)."""
  n = x.shape[axis]
  index = jnp.clip(jnp.arange(n) + step, 0, n - 1)
  return jnp.take(x, index, axis=axis)


def upsample(x: jax.Array, mode: str) -> jax.Array:
  """[B, H, W, C] -> [B, 2H, 2W, C]. 'bilinear': torch's F.interpolate(scale_factor=2,
  mode='bilinear', align_corners=False): output 2i = ¾x[i] + ¼x[i-1], 2i+1 = ¾x[i] +
  ¼x[i+1], the edge repeated; 'nearest': each pixel repeated (Chainer's unpooling_2d)."""
  for axis in (1, 2):
    if mode == "nearest":
      x = jnp.repeat(x, 2, axis=axis)
      continue
    even = 0.75 * x + 0.25 * _shift(x, axis, -1)
    odd = 0.75 * x + 0.25 * _shift(x, axis, 1)
    x = jnp.stack([even, odd], axis=axis + 1)
    x = x.reshape(x.shape[:axis] + (2 * x.shape[axis],) + x.shape[axis + 2:])
  return x


def avg_pool(x: jax.Array) -> jax.Array:
  """F.avg_pool2d(x, 2): the mean of each 2x2 block."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def _batch_norm(train: bool, name: str) -> nn.Module:
  # torch BatchNorm2d: eps 1e-5, momentum 0.1 (flax 0.9).
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      name=name)


class GBlock(nn.Module):
  """mimicry's GBlock: x [B, H, W, in] -> [B, 2H, 2W, out] (upsample) or [B, H, W, out]."""

  out_channels: int
  upsample: bool = False
  upsample_mode: str = "bilinear"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    in_channels, out = x.shape[-1], self.out_channels
    up = (lambda t: upsample(t, self.upsample_mode)) if self.upsample else (lambda t: t)
    h = nn.relu(_batch_norm(train, "b1")(x))
    h = Conv(out, 3, math.sqrt(2.0), name="c1")(up(h))
    h = nn.relu(_batch_norm(train, "b2")(h))
    h = Conv(out, 3, math.sqrt(2.0), name="c2")(h)
    if in_channels != out or self.upsample:
      x = Conv(out, 1, 1.0, name="c_sc")(up(x))
    return h + x


class DBlock(nn.Module):
  """The authors' discriminator Block: x [B, H, W, in] -> [B, H/2, W/2, out]
  (downsample) or [B, H, W, out]; hidden width = in. spectral_norm: every conv."""

  out_channels: int
  downsample: bool = False
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    in_channels, out = x.shape[-1], self.out_channels

    def conv(features, size, gain, name):
      return normalized(Conv(features, size, gain, name=name), self.spectral_norm, train)
    h = conv(in_channels, 3, math.sqrt(2.0), "c1")(nn.relu(x))
    h = conv(out, 3, math.sqrt(2.0), "c2")(nn.relu(h))
    if self.downsample:
      h = avg_pool(h)
    if in_channels != out or self.downsample:
      x = conv(out, 1, 1.0, "c_sc")(x)
      if self.downsample:
        x = avg_pool(x)
    return h + x


class DBlockOptimized(nn.Module):
  """D's first block: x [B, H, W, in] -> [B, H/2, W/2, out]; no ReLU before its first
  conv, and the shortcut pools before its conv. spectral_norm: every conv."""

  out_channels: int
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    out = self.out_channels

    def conv(size, gain, name):
      return normalized(Conv(out, size, gain, name=name), self.spectral_norm, train)
    h = conv(3, math.sqrt(2.0), "c1")(x)
    h = avg_pool(conv(3, math.sqrt(2.0), "c2")(nn.relu(h)))
    return h + conv(1, 1.0, "c_sc")(avg_pool(x))


def check_image_shape(image_shape: tuple[int, int, int]) -> str | None:
  """None if the resnet fits the shape: square, the side divisible by 4 (D halves it
  twice), and G has at least one up-block (dcgan.stages)."""
  h, w, _ = image_shape
  if h != w:
    return f"the resnet needs square images, got {h}x{w}"
  if h % 4 or dcgan.stages(h)[1] == 0:
    return f"the resnet needs an image side divisible by 4 and above 7, got {h}"
  return None


class ResNetGenerator(nn.Module):
  """z [B, latent] -> [B, H, W, C] in [-1, 1] (tanh)."""

  image_shape: tuple[int, int, int]
  width: int = 256
  upsample: str = "bilinear"

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    side, _, channels = self.image_shape
    base, n = dcgan.stages(side)
    x = Linear(base * base * self.width, name="l1")(z)
    x = x.reshape(z.shape[0], self.width, base, base).transpose(0, 2, 3, 1)
    for i in range(n):
      x = GBlock(self.width, upsample=True, upsample_mode=self.upsample,
                 name=f"block{i + 2}")(x, train)
    x = nn.relu(_batch_norm(train, "b5")(x))
    return jnp.tanh(Conv(channels, 3, 1.0, name="c5")(x))


class ResNetDiscriminator(nn.Module):
  """x [B, H, W, C] -> [B] logits; the feature layer is the sum-pooled [B, width]."""

  width: int = 128
  spectral_norm: bool = True
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    sn = self.spectral_norm
    h = DBlockOptimized(self.width, sn, name="block1")(x, train)
    h = DBlock(self.width, downsample=True, spectral_norm=sn, name="block2")(h, train)
    h = DBlock(self.width, spectral_norm=sn, name="block3")(h, train)
    h = DBlock(self.width, spectral_norm=sn, name="block4")(h, train)
    h = jnp.sum(nn.relu(h), axis=(1, 2))  # Global sum pooling.
    sow_features(self, h)
    return discriminator_head(h, self.minibatch_kernels, self.minibatch_kernel_dim,
                              lambda k: normalized(Linear(k, name="l5"), sn, train))
