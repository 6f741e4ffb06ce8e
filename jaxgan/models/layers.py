"""Layers shared by several models: PyTorch-initialised Linear, Maxout, minibatch
discrimination, spectral normalization, and the feature/head contract every
discriminator follows."""

from __future__ import annotations

import functools
import math
from typing import Callable

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


# --------------------------------------------------------------------------- spectral norm
def _normalize(x: jax.Array, eps: float) -> jax.Array:
  # torch.nn.functional.normalize: x / max(‖x‖, eps).
  return x / jnp.maximum(jnp.linalg.norm(x), eps)


class SpectralNorm(nn.Module):
  """Spectral normalization (Miyato et al. 2018) of a layer's weight, as
  torch.nn.utils.spectral_norm does it: the layer runs with kernel / σ, σ ≈ the largest
  singular value of the kernel, estimated by power iteration.

  Wraps any layer whose weight is the parameter named `weight` ('kernel': flax's Dense,
  Conv, ConvTranspose, jaxgan's TorchLinear and SpaceToDepthConv); its other parameters
  (bias) are left as they are, and its parameter paths are unchanged (they stay in the
  parent's scope). Called like the layer, plus `update_stats`:

      y = SpectralNorm(nn.Conv(64, (3, 3)))(x, update_stats=train)

  The kernel's last axis is its output axis, so the matrix is W = kernel reshaped to
  [prod(other axes), out], transposed: [out, in]. torch reshapes a Conv weight [O, I, kh,
  kw] to [O, I·kh·kw] (dim 0; dim 1 for ConvTranspose, also the output axis); here HWIO
  gives [O, kh·kw·I]: the same matrix up to a permutation of its columns, so u and σ are
  torch's and v is torch's v permuted.

  State, in the 'batch_stats' collection (as BatchNorm's statistics: jaxgan's steps pass
  it through D's passes and check it with the divergence guard): u [out] and v [in], both
  initialised as torch does, N(0, 1) normalised (from the 'params' rng).
    update_stats=True (training): n_power_iterations of v ← normalize(Wᵀu),
      u ← normalize(Wv) with W held constant (no gradient), then u, v are stored; σ =
      uᵀWv is differentiated in W only. The apply must have 'batch_stats' mutable. At
      initialisation nothing is iterated (torch iterates from the first training forward)
      and the weight is stored as the layer initialised it, as torch's weight_orig.
    update_stats=False (evaluation): σ = uᵀWv from the stored u and v, no iteration.

  Not flax's nn.SpectralNorm, which differs from torch: its u starts unnormalised, it
  keeps no v (evaluation iterates again without storing, as the authors' Chainer code
  does), its eps is added under the square root, and its state keys contain '/'.
  """

  layer: nn.Module
  n_power_iterations: int = 1
  eps: float = 1e-12
  weight: str = "kernel"

  @nn.compact
  def __call__(self, *args, update_stats: bool, **kwargs):
    def normalize_weight(variables):
      params = dict(variables["params"])
      if self.weight not in params or jnp.ndim(params[self.weight]) < 2:
        raise ValueError(
            f"SpectralNorm wraps a layer with a weight parameter {self.weight!r} of at "
            f"least 2 dimensions; {type(self.layer).__name__} has "
            f"{sorted(params)}: wrap the layer that owns the weight (a Dense or Conv)")
      kernel = params[self.weight]
      mat = kernel.reshape(-1, kernel.shape[-1])  # Wᵀ: [in, out].
      n_in, n_out = mat.shape
      if not self.has_variable("batch_stats", "u"):
        # One draw for both (each normal draw is a few hundred ops to compile).
        start = jax.random.normal(self.make_rng("params"), (n_out + n_in,))
      u = self.variable("batch_stats", "u", lambda: _normalize(start[:n_out], self.eps))
      v = self.variable("batch_stats", "v", lambda: _normalize(start[n_out:], self.eps))
      if self.is_initializing():
        # map_variables(init=True) stores what this returns as the initial params: the
        # layer's own initialisation, not kernel / σ (σ from the random u, v would scale
        # each kernel by ~1/σ, 13-96x for the mlp's D, and Adam's steps, which do not
        # scale with the weight, would then move W/σ that many times more slowly).
        return variables
      u_value, v_value = u.value, v.value
      if update_stats:
        frozen = jax.lax.stop_gradient(mat)
        for _ in range(self.n_power_iterations):
          v_value = _normalize(frozen @ u_value, self.eps)  # Wᵀu
          u_value = _normalize(v_value @ frozen, self.eps)  # Wv
        u.value, v.value = u_value, v_value
      sigma = jnp.dot(v_value @ mat, u_value)  # uᵀWv
      params[self.weight] = kernel / sigma
      return {**variables, "params": params}

    return nn.map_variables(lambda layer: layer(*args, **kwargs), "params",
                            trans_in_fn=normalize_weight,
                            init=self.is_initializing())(self.layer)


def spectral_norm(layer: nn.Module, train: bool) -> Callable:
  """`layer` spectrally normalised (SpectralNorm, its state advancing when `train`),
  called like the layer; build it inside the parent's compact method. The state lives
  beside the layer, under '<layer name>_spectral'."""
  name = f"{layer.name}_spectral" if layer.name else None
  return functools.partial(SpectralNorm(layer, name=name), update_stats=train)


def normalized(layer: nn.Module, spectral: bool, train: bool) -> Callable:
  """`layer`, spectrally normalised when `spectral` (a D's `d_norm='spectral'`)."""
  return spectral_norm(layer, train) if spectral else layer
