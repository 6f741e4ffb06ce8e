"""Generators and discriminators (Flax linen), and the registry that names them.

Contract, for every registered model:
  * generator(image_shape)  -> module; `G.apply(vars, z [B, latent], train) -> [B, H, W, C]`
    in the model's `pixel_range`.
  * discriminator(image_shape, options) -> module;
    `D.apply(vars, x [B, H, W, C], train) -> [B]` logits (D(x) = sigmoid(logit)); losses
    work on logits for numerical stability.
  * `noise`: the distribution of z; `pixel_range`: the range of G's output, and so the
    range the data is scaled to (this registry is the one place that states it);
    `check_shape(image_shape)`: None when the model fits images of that shape, else why
    not (the registry owns its checks: `state.make_gan` never branches on a name).
Modules with BatchNorm keep running statistics in the 'batch_stats' collection; modules
with dropout take an rng named 'dropout' when train=True. Every discriminator sows its
feature layer (the input of its last linear layer, [B, F]) as intermediates/features,
which feature matching reads, and takes `ModelOptions` (minibatch discrimination, D's
normalisation). Spectrally normalised layers (layers.SpectralNorm) keep their power
iteration's u and v in 'batch_stats' and advance them in train mode.

Files: `layers` (TorchLinear, Maxout, minibatch discrimination, spectral normalization,
the D head), `mlp` (PyTorch-GAN gan.py), `paper` (Goodfellow et al. 2014), `dcgan`, `toy`,
`pacgan` (Lin et al. 2018's toy models), `resnet` (SNGAN, Miyato et al. 2018),
`conditional`.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import flax.linen as nn
import jax

from jaxgan.models import dcgan, resnet
from jaxgan.models.conditional import ConditionalDiscriminator, ConditionalGenerator
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.models.layers import (Maxout, MinibatchDiscrimination, SpectralNorm,
                                  TorchLinear, discriminator_head, normalized,
                                  sow_features, spectral_norm)
from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator
from jaxgan.models.pacgan import PacGANDiscriminator, PacGANGenerator
from jaxgan.models.paper import PaperDiscriminator, PaperGenerator, paper_output_bias
from jaxgan.models.resnet import ResNetDiscriminator, ResNetGenerator
from jaxgan.models.toy import ToyDiscriminator, ToyGenerator

NOISES = ("normal", "uniform")


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
  d_norm: D's normalisation, one of the model's `ModelSpec.d_norms`: 'batch' or 'layer'
  on dcgan's hidden conv layers, 'spectral' on every Dense/Conv of D (the head too), or
  'none'; a model whose D has no such layers takes 'batch', 'layer' and 'none' alike.
  """

  minibatch_kernels: int = 0
  minibatch_kernel_dim: int = 5
  d_norm: str = "batch"

  @classmethod
  def from_config(cls, config) -> "ModelOptions":
    return cls(config.minibatch_kernels, config.minibatch_kernel_dim, config.d_norm)


def _any_shape(image_shape: tuple[int, int, int]) -> str | None:
  del image_shape
  return None


class ModelSpec(NamedTuple):
  generator: Callable[[tuple[int, int, int]], nn.Module]
  discriminator: Callable[..., nn.Module]  # (image_shape, ModelOptions) -> module
  noise: str
  pixel_range: tuple[float, float]
  check_shape: Callable[[tuple[int, int, int]], str | None] = _any_shape
  # D couples the examples of a batch under these options (BatchNorm, minibatch
  # features): a per-example gradient penalty is then invalid.
  couples_batch: Callable[[ModelOptions], bool] = lambda o: o.minibatch_kernels > 0
  # (G's params, the training images [N, H, W, C]) -> G's params: a data-dependent
  # initialisation of G (state.GAN.init), None for none.
  g_init_from_data: Callable | None = None
  # The values of --d_norm its D takes (config.validate refuses the others).
  d_norms: tuple[str, ...] = ("batch", "layer", "none")


# Ds without normalisation layers: 'batch', 'layer' and 'none' leave them as they are,
# 'spectral' normalises every Dense/Conv.
_ANY_NORM = ("batch", "layer", "none", "spectral")


def _mbd(options: ModelOptions) -> dict:
  return {"minibatch_kernels": options.minibatch_kernels,
          "minibatch_kernel_dim": options.minibatch_kernel_dim}


MODELS: dict[str, ModelSpec] = {
    # PyTorch-GAN implementations/gan/gan.py; pixels in [-1, 1] (Tanh output).
    "mlp": ModelSpec(lambda shape: MLPGenerator(shape),
                     lambda shape, o=ModelOptions(): MLPDiscriminator(
                         spectral_norm=o.d_norm == "spectral", **_mbd(o)),
                     "normal", (-1.0, 1.0), d_norms=_ANY_NORM),
    # The paper's MNIST model; pixels in [0, 1] (Sigmoid output).
    "paper_mlp": ModelSpec(lambda shape: PaperGenerator(shape),
                           lambda shape, o=ModelOptions(): PaperDiscriminator(**_mbd(o)),
                           "uniform", (0.0, 1.0), g_init_from_data=paper_output_bias),
    # Radford et al. 2016 for 28x28 and 32x32 (and any even size down to 4 or 7).
    "dcgan": ModelSpec(lambda shape: DCGANGenerator(shape),
                       lambda shape, o=ModelOptions(): DCGANDiscriminator(
                           d_norm=o.d_norm, **_mbd(o)),
                       "normal", (-1.0, 1.0), check_shape=dcgan.check_image_shape,
                       couples_batch=lambda o: o.minibatch_kernels > 0
                       or o.d_norm == "batch", d_norms=dcgan.D_NORMS),
    # Small ReLU MLPs for the 1-D and 2-D toy datasets (data used as is, not scaled).
    "toy_mlp": ModelSpec(lambda shape: ToyGenerator(shape),
                         lambda shape, o=ModelOptions(): ToyDiscriminator(
                             spectral_norm=o.d_norm == "spectral", **_mbd(o)),
                         "normal", (-1.0, 1.0), d_norms=_ANY_NORM),
    # PacGAN's toy models (Lin et al. 2018): G 4 x 400 ReLU + BatchNorm, D 3 maxout
    # layers of 200 x 5 (toy_ring8 / toy_grid25; --pack for PacGAN's packing).
    "pacgan_mlp": ModelSpec(lambda shape: PacGANGenerator(shape),
                            lambda shape, o=ModelOptions(): PacGANDiscriminator(
                                spectral_norm=o.d_norm == "spectral", **_mbd(o)),
                            "normal", (-1.0, 1.0), d_norms=_ANY_NORM),
    # SNGAN's residual G and D (Miyato et al. 2018; mimicry's SNGAN 32) at 32x32 and
    # 28x28 (any square side divisible by 4 above 7); SNGAN's D is --d_norm=spectral.
    "resnet": ModelSpec(lambda shape: ResNetGenerator(shape),
                        lambda shape, o=ModelOptions(): ResNetDiscriminator(
                            spectral_norm=o.d_norm == "spectral", **_mbd(o)),
                        "normal", (-1.0, 1.0), check_shape=resnet.check_image_shape,
                        d_norms=("spectral", "none")),
}


def get_model(name: str) -> ModelSpec:
  if name not in MODELS:
    raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}")
  return MODELS[name]


__all__ = ["MODELS", "NOISES", "ConditionalDiscriminator", "ConditionalGenerator",
           "DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator",
           "Maxout", "MinibatchDiscrimination", "ModelOptions", "ModelSpec",
           "PacGANDiscriminator", "PacGANGenerator", "PaperDiscriminator",
           "PaperGenerator", "ResNetDiscriminator", "ResNetGenerator", "SpectralNorm",
           "ToyDiscriminator", "ToyGenerator", "TorchLinear", "discriminator_head",
           "get_model", "normalized", "sample_noise", "sow_features", "spectral_norm"]
