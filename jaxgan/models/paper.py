"""The MNIST model of Goodfellow et al. 2014 (goodfeli/adversarial mnist.yaml)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.layers import Maxout, discriminator_head, sow_features, uniform_init


class PaperGenerator(nn.Module):
  """Goodfellow et al. 2014's MNIST generator (goodfeli/adversarial mnist.yaml).

  ReLU 1200 → ReLU 1200 → Sigmoid 784, weights uniform in ±0.05 (pylearn2 irange),
  zero hidden biases; the output bias is set from the training data's pixel marginals
  (`paper_output_bias`, run by GAN.init). Output in [0, 1].
  """

  image_shape: tuple[int, int, int]
  hidden: tuple[int, ...] = (1200, 1200)
  irange: float = 0.05

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train  # No BatchNorm or dropout in the paper's generator.
    x = z
    for width in self.hidden:
      x = nn.relu(nn.Dense(width, kernel_init=uniform_init(self.irange))(x))
    x = nn.Dense(math.prod(self.image_shape), kernel_init=uniform_init(self.irange))(x)
    return nn.sigmoid(x).reshape((z.shape[0],) + tuple(self.image_shape))


class PaperDiscriminator(nn.Module):
  """Goodfellow et al. 2014's MNIST discriminator (mnist.yaml, AdversaryCost2).

  Maxout(240 units × 5 pieces) → Maxout(240 × 5) → 1 (logit), weights in ±0.005.
  Dropout on D's input keeps 0.8 and on each hidden layer's input keeps 0.5, with
  pylearn2's inverse scaling (1.25, 2), applied in both D's and G's objectives.
  """

  units: int = 240
  pieces: int = 5
  irange: float = 0.005
  input_keep: float = 0.8
  hidden_keep: float = 0.5
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = x.reshape((x.shape[0], -1))
    x = nn.Dropout(1.0 - self.input_keep, deterministic=not train)(x)
    for _ in range(2):
      x = Maxout(self.units, self.pieces, self.irange)(x)
      x = nn.Dropout(1.0 - self.hidden_keep, deterministic=not train)(x)
    sow_features(self, x)
    return discriminator_head(
        x, self.minibatch_kernels, self.minibatch_kernel_dim,
        lambda n: nn.Dense(n, kernel_init=uniform_init(self.irange)))


def paper_output_bias(params, images: jax.Array):
  """G's output bias from the data: logit of each pixel's mean over the training images,
  clipped to [1e-7, 1 - 1e-7], as pylearn2's init_sigmoid_bias_from_marginals does for
  the paper's `init_bias` (so sigmoid(bias) is the data's mean image).

  params: PaperGenerator's (or a ConditionalGenerator's wrapping it); images [N, H, W,
  C] uint8 (or floats in [0, 1]). Returns the params with Dense_2's bias replaced.
  """
  unit = images.astype(jnp.float32)
  if images.dtype == jnp.uint8:
    unit = unit / 255.0
  mean = jnp.clip(jnp.mean(unit, axis=0).reshape(-1), 1e-7, 1.0 - 1e-7)
  bias = jnp.log(mean / (1.0 - mean))
  inner = "inner" in params and "Dense_2" not in params
  layers = dict(params["inner"] if inner else params)
  layers["Dense_2"] = {**layers["Dense_2"], "bias": bias}
  return {**params, "inner": layers} if inner else layers
