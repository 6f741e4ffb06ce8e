"""Generators and discriminators (Flax linen), and the registry that names them.

Contract, for every registered model:
  * generator(image_shape)  -> module; `G.apply(vars, z [B, latent], train) -> [B, H, W, C]`
    in the model's `pixel_range`.
  * discriminator(image_shape) -> module; `D.apply(vars, x [B, H, W, C], train) -> [B]`
    logits (D(x) = sigmoid(logit)); losses work on logits for numerical stability.
  * `noise`: the distribution of z; `pixel_range`: the range of G's output, and so the
    range the data is scaled to (this registry is the one place that states it).
Modules with BatchNorm keep running statistics in the 'batch_stats' collection; modules
with dropout take an rng named 'dropout' when train=True. Every discriminator sows its
feature layer (the input of its last linear layer, [B, F]) as intermediates/features,
which feature matching reads, and takes `ModelOptions` (minibatch discrimination, D's
normalisation); factories are called as `spec.discriminator(image_shape, options)`.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan import dcgan
from jaxgan.layers import discriminator_head, sow_features


def _uniform(bound: float):
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
    kernel = self.param("kernel", _uniform(bound), (fan_in, self.features))
    bias = self.param("bias", _uniform(bound), (self.features,))
    return x @ kernel + bias


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


class PaperGenerator(nn.Module):
  """Goodfellow et al. 2014's MNIST generator (goodfeli/adversarial mnist.yaml).

  ReLU 1200 → ReLU 1200 → Sigmoid 784, weights uniform in ±0.05 (pylearn2 irange),
  zero biases. Output in [0, 1].
  """

  image_shape: tuple[int, int, int]
  hidden: tuple[int, ...] = (1200, 1200)
  irange: float = 0.05

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train  # No BatchNorm or dropout in the paper's generator.
    x = z
    for width in self.hidden:
      x = nn.relu(nn.Dense(width, kernel_init=_uniform(self.irange))(x))
    x = nn.Dense(math.prod(self.image_shape), kernel_init=_uniform(self.irange))(x)
    return nn.sigmoid(x).reshape((z.shape[0],) + tuple(self.image_shape))


class Maxout(nn.Module):
  """pylearn2 Maxout: an affine map to units × pieces, then the max over pieces."""

  units: int
  pieces: int
  irange: float

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    z = nn.Dense(self.units * self.pieces, kernel_init=_uniform(self.irange))(x)
    return z.reshape(z.shape[:-1] + (self.units, self.pieces)).max(axis=-1)


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
        lambda n: nn.Dense(n, kernel_init=_uniform(self.irange)))


class ToyGenerator(nn.Module):
  """z -> ReLU 128 -> ReLU 128 -> linear [B, *image_shape] (unbounded: toy data is not scaled).

  The size of the unrolled-GAN and VEEGAN 2-D mixture experiments.
  """

  image_shape: tuple[int, int, int]
  hidden: tuple[int, ...] = (128, 128)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train
    x = z
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    x = nn.Dense(math.prod(self.image_shape))(x)
    return x.reshape((z.shape[0],) + tuple(self.image_shape))


class ToyDiscriminator(nn.Module):
  """x -> ReLU 128 -> ReLU 128 (features) -> 1 logit."""

  hidden: tuple[int, ...] = (128, 128)
  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    sow_features(self, x)
    return discriminator_head(x, self.minibatch_kernels, self.minibatch_kernel_dim,
                              nn.Dense)


# --------------------------------------------------------------------------- noise
def sample_noise(kind: str, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """z ~ the named distribution: 'normal' N(0, 1), or 'uniform' on [-√3, √3] (unit variance)."""
  if kind == "normal":
    return jax.random.normal(key, shape)
  if kind == "uniform":
    return jax.random.uniform(key, shape, minval=-math.sqrt(3.0), maxval=math.sqrt(3.0))
  raise ValueError(f"unknown noise {kind!r}")


# --------------------------------------------------------------------------- registry
class ModelOptions(NamedTuple):
  """Options every discriminator factory takes (from the Config: same names as flags).

  minibatch_kernels: B of minibatch discrimination (0 = off); minibatch_kernel_dim: C.
  d_norm: the normalisation of D's hidden conv layers where a model has one ('batch',
  'layer' or 'none'); models without normalisation ignore it.
  """

  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5
  d_norm: str = "batch"

  @classmethod
  def from_config(cls, config) -> "ModelOptions":
    return cls(config.minibatch_kernels, config.minibatch_kernel_dim, config.d_norm)


class ModelSpec(NamedTuple):
  generator: Callable[[tuple[int, int, int]], nn.Module]
  discriminator: Callable[..., nn.Module]  # (image_shape, ModelOptions) -> module
  noise: str
  pixel_range: tuple[float, float]


def _mbd(options: ModelOptions) -> dict:
  return {"minibatch_kernels": options.minibatch_kernels,
          "minibatch_kernel_dim": options.minibatch_kernel_dim}


MODELS: dict[str, ModelSpec] = {
    # PyTorch-GAN implementations/gan/gan.py; pixels in [-1, 1] (Tanh output).
    "mlp": ModelSpec(lambda shape: MLPGenerator(shape),
                     lambda shape, o=ModelOptions(): MLPDiscriminator(**_mbd(o)),
                     "normal", (-1.0, 1.0)),
    # The paper's MNIST model; pixels in [0, 1] (Sigmoid output).
    "paper_mlp": ModelSpec(lambda shape: PaperGenerator(shape),
                           lambda shape, o=ModelOptions(): PaperDiscriminator(**_mbd(o)),
                           "uniform", (0.0, 1.0)),
    # Radford et al. 2016 for 28x28 and 32x32 (and any even size down to 4 or 7).
    "dcgan": ModelSpec(lambda shape: dcgan.DCGANGenerator(shape),
                       lambda shape, o=ModelOptions(): dcgan.DCGANDiscriminator(
                           d_norm=o.d_norm, **_mbd(o)),
                       "normal", (-1.0, 1.0)),
    # Small ReLU MLPs for the 1-D and 2-D toy datasets (data used as is, not scaled).
    "toy_mlp": ModelSpec(lambda shape: ToyGenerator(shape),
                         lambda shape, o=ModelOptions(): ToyDiscriminator(**_mbd(o)),
                         "normal", (-1.0, 1.0)),
}


def get_model(name: str) -> ModelSpec:
  if name not in MODELS:
    raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}")
  return MODELS[name]
