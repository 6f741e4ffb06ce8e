"""Layers shared by several models: PyTorch-initialised Linear, Maxout, minibatch
discrimination, and the feature/head contract every discriminator follows."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def uniform_init(bound: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


class TorchLinear(nn.Module):
  """nn.Linear with PyTorch's default initialisation.

  torch initialises weight with kaiming_uniform(a=sqrt(5)) and bias uniformly, both in
  ±1/sqrt(fan_in); matching it keeps side-by-side comparisons with PyTorch-GAN fair.
  """

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    bound = 1.0 / math.sqrt(fan_in)
    kernel = self.param("kernel", uniform_init(bound), (fan_in, self.features))
    bias = self.param("bias", uniform_init(bound), (self.features,))
    return x @ kernel + bias


class Maxout(nn.Module):
  """pylearn2 Maxout: an affine map to units × pieces, then the max over pieces."""

  units: int
  pieces: int
  irange: float

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    z = nn.Dense(self.units * self.pieces, kernel_init=uniform_init(self.irange))(x)
    return z.reshape(z.shape[:-1] + (self.units, self.pieces)).max(axis=-1)


class MinibatchDiscrimination(nn.Module):
  """Salimans et al. 2016, §3.2: features that let D compare an example with its batch.

  f [N, A] -> [N, A + num_kernels]: M = f·T reshaped [N, B, C];
  c_b(i, j) = exp(−‖M_i,b − M_j,b‖₁); o(i)_b = Σ_j c_b(i, j) + bias_b (j runs over the
  whole batch, i included, as in the paper and its code); returns [f, o].
  T ~ N(0, 0.05²) and bias = −1 as in the authors' Lasagne layer.
  Because o couples the examples of a batch, D must see real and fake batches in
  separate passes (jaxgan.steps always does) and a per-example gradient penalty is invalid.
  """

  num_kernels: int  # B
  kernel_dim: int = 5  # C

  @nn.compact
  def __call__(self, f: jax.Array) -> jax.Array:
    n, a = f.shape
    t = self.param("T", nn.initializers.normal(0.05),
                   (a, self.num_kernels * self.kernel_dim))
    bias = self.param("bias", nn.initializers.constant(-1.0), (self.num_kernels,))
    m = (f @ t).reshape(n, self.num_kernels, self.kernel_dim)
    m = jnp.transpose(m, (1, 2, 0))  # [B, C, N]
    # L1 distances [B, N, N] summed one kernel dimension at a time: on CPU this is
    # much faster (forward + backward) than one broadcast [N, N, B, C] tensor.
    l1 = sum(jnp.abs(m[:, c, :, None] - m[:, c, None, :]) for c in range(self.kernel_dim))
    o = jnp.sum(jnp.exp(-l1), axis=2).T + bias  # [N, B]
    return jnp.concatenate([f, o], axis=-1)


def sow_features(module: nn.Module, features: jax.Array) -> None:
  """Records D's feature layer [B, F] under intermediates/features (feature matching)."""
  module.sow("intermediates", "features", features)


def discriminator_head(features: jax.Array, minibatch_kernels: int,
                       minibatch_kernel_dim: int, dense) -> jax.Array:
  """features [B, F] -> logits [B]: optional minibatch features, then `dense(1)`."""
  if minibatch_kernels:
    features = MinibatchDiscrimination(minibatch_kernels, minibatch_kernel_dim,
                                       name="minibatch_disc")(features)
  return dense(1)(features)[:, 0]
