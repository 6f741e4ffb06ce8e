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
  """Salimans et al. 2016, §3.2, as the authors' code (improved-gan nn.py MinibatchLayer).

  f [N, A] -> [N, A + num_kernels] = [f, o]:
    W = θ · exp(s) / ‖θ‖ (weight normalisation of each of the B·C columns of θ [A, B, C]
        over the input axis, scale s [B, C]);
    M = f·W [N, B, C];  d_b(i, j) = ‖M_i,b − M_j,b‖₁;
    o(i)_b = Σ_{j ≠ i} exp(−d_b(i, j)) + bias_b  (each example's distance to itself is
    excluded, as the code's 1e6·eye term does).
  θ ~ N(0, 0.05²). Data-dependent init (the code's `init` pass, on 500 real examples
  before training): with s = 0, let m_b = ½ mean_i min_{j≠i} d_b(i, j); then s_b = −log
  m_b (so initial distances are in units of m_b) and bias_b = −mean_i o(i)_b (initial
  features of mean 0). jaxgan's GAN.init passes real examples to D's init for that
  (GAN.init_examples); initialised on a dummy batch, s and bias only get their shapes.
  Because o couples the examples of a batch, D must see real and fake batches in
  separate passes (jaxgan.steps always does) and a per-example gradient penalty is
  invalid.
  """

  num_kernels: int  # B
  kernel_dim: int = 5  # C

  @nn.compact
  def __call__(self, f: jax.Array) -> jax.Array:
    n, a = f.shape
    theta = self.param("theta", nn.initializers.normal(0.05),
                       (a, self.num_kernels, self.kernel_dim))
    unit = theta / jnp.sqrt(jnp.sum(jnp.square(theta), axis=0))  # [A, B, C]
    not_self = 1.0 - jnp.eye(n, dtype=f.dtype)

    def distances(w):  # [B, N, N] L1 distances of M = f·w, one kernel dim at a time.
      m = jnp.einsum("na,abc->bcn", f, w)  # [B, C, N]
      # Summed over C in a loop: on CPU much faster (forward + backward) than one
      # broadcast [N, N, B, C] tensor.
      return sum(jnp.abs(m[:, c, :, None] - m[:, c, None, :])
                 for c in range(self.kernel_dim))

    def init_scale(key, shape):
      del key
      d = distances(unit) + 1e6 * jnp.eye(n, dtype=f.dtype)
      mean_min = 0.5 * jnp.mean(jnp.min(d, axis=2), axis=1)  # [B]
      return jnp.broadcast_to(-jnp.log(mean_min)[:, None], shape)

    scale = self.param("log_weight_scale", init_scale,
                       (self.num_kernels, self.kernel_dim))
    d = distances(unit * jnp.exp(scale))
    o = jnp.sum(jnp.exp(-d) * not_self[None], axis=2).T  # [N, B]
    bias = self.param("bias", lambda key, shape: -jnp.mean(o, axis=0),
                      (self.num_kernels,))
    return jnp.concatenate([f, o + bias], axis=-1)


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
