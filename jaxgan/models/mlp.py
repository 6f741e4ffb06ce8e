"""PyTorch-GAN implementations/gan/gan.py's MLP generator and discriminator."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgan.models.layers import TorchLinear, discriminator_head, normalized, sow_features


class TorchBatchNorm1d(nn.Module):
  """torch.nn.BatchNorm1d on [B, F], with flax's names (params scale, bias; batch_stats
  mean, var), so the parameter tree is nn.BatchNorm's.

  Training normalises with the batch's biased variance, as both do, but torch folds the
  *unbiased* variance (x B / (B - 1)) into running_var, where flax's nn.BatchNorm folds
  the biased one; samples (eval mode) read running_var. The normalisation and the
  running mean are computed as nn.BatchNorm computes them (same operations, same order),
  so training is unchanged. momentum is torch's: the weight of the new batch.
  """

  epsilon: float
  momentum: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    features = (x.shape[-1],)
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, features, jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, features, jnp.float32)
    scale = self.param("scale", nn.initializers.ones, features, jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, features, jnp.float32)
    if train:
      square = lax.square(x)  # Before the means, as nn.BatchNorm: the same gradient.
      mean, mean2 = x.mean((0,)), square.mean((0,))
      var = jnp.maximum(0.0, mean2 - lax.square(mean))
      if not self.is_initializing():
        n = x.shape[0]
        decay = 1.0 - self.momentum
        ra_mean.value = decay * ra_mean.value + (1 - decay) * mean
        # torch refuses a training batch of 1; here its variance (0) is folded as is.
        unbiased = var * (n / (n - 1)) if n > 1 else var
        ra_var.value = decay * ra_var.value + (1 - decay) * unbiased
    else:
      mean, var = ra_mean.value, ra_var.value
    y = x - jnp.expand_dims(mean, (0,))
    mul = lax.rsqrt(jnp.expand_dims(var, (0,)) + self.epsilon)
    mul *= scale.reshape((1,) + features)
    y *= mul
    y += bias.reshape((1,) + features)
    return y


class MLPGenerator(nn.Module):
  """PyTorch-GAN gan.py's generator: 100→128→256→512→1024→784, Tanh.

  BatchNorm1d(out, 0.8) there passes 0.8 as *eps* (a known quirk, kept), with torch's
  momentum 0.1 and its unbiased running variance (TorchBatchNorm1d). The first hidden
  layer has no BatchNorm.
  """

  image_shape: tuple[int, int, int]
  hidden: tuple[int, ...] = (128, 256, 512, 1024)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    x = z
    for i, width in enumerate(self.hidden):
      x = TorchLinear(width)(x)
      if i > 0:
        # Named as the nn.BatchNorm it replaced: checkpoints keep their paths.
        x = TorchBatchNorm1d(epsilon=0.8, momentum=0.1, name=f"BatchNorm_{i - 1}")(
            x, train)
      x = nn.leaky_relu(x, 0.2)
    x = TorchLinear(math.prod(self.image_shape))(x)
    return jnp.tanh(x).reshape((z.shape[0],) + tuple(self.image_shape))


class MLPDiscriminator(nn.Module):
  """PyTorch-GAN gan.py's discriminator: 784→512→256→1, LeakyReLU(0.2); returns logits.
  spectral_norm: every linear layer, the head too, spectrally normalised."""

  hidden: tuple[int, ...] = (512, 256)
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    def linear(width):
      return normalized(TorchLinear(width), self.spectral_norm, train)
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden:
      x = nn.leaky_relu(linear(width)(x), 0.2)
    sow_features(self, x)
    return discriminator_head(x, self.minibatch_kernels, self.minibatch_kernel_dim,
                              linear)
