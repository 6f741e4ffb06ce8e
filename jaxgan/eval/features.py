"""The feature-network interface that the metrics are computed on.

FID and KID compare penultimate-layer features; the Inception Score and the mode
statistics use class probabilities. Any network that maps images to both can be
plugged in by implementing `FeatureExtractor`: the project's own classifier
(`jaxgan.eval.classifier`, for 28×28 grayscale data, where no Inception weights can be
downloaded) implements it, and an Inception-v3 wrapper would too, given local weights
(its `apply` would resize to 299×299, repeat the gray channel three times, and return
the 2048-d pool features and the 1008-way softmax).
"""

from __future__ import annotations

from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.errors import EvalError


class FeatureExtractor(Protocol):
  """name: a label for reports (e.g. 'classifier:fashion_mnist').
  dataset: the dataset its weights were trained on; evaluation refuses to compare
    samples of another dataset with it (None: a general-purpose network, e.g. Inception).
  image_shape: (H, W, C) of the images it takes. num_classes, feature_dim: output sizes.
  accuracy: its test accuracy on `dataset` (None when unknown).
  """

  name: str
  dataset: str | None
  image_shape: tuple[int, int, int]
  num_classes: int
  feature_dim: int
  accuracy: float | None

  def apply(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """images [B, H, W, C] float32 in [0, 1] -> (features [B, F], probs [B, C]).
    Pure and jit-compatible (no side effects, no host work), and jitted itself (e.g.
    `jax.jit` with the network static and its weights traced): `extract` calls it
    once per batch."""
    ...


def check_compatible(extractor: FeatureExtractor, dataset: str,
                     image_shape: tuple[int, ...]) -> None:
  """Raises EvalError unless `extractor` may be used on images of `dataset`."""
  if extractor.dataset is not None and extractor.dataset != dataset:
    raise EvalError(
        f"the feature network {extractor.name!r} was trained on "
        f"{extractor.dataset!r}, not on {dataset!r}: its features and classes mean "
        f"nothing for {dataset!r} images. Train one with `python -m jaxgan.classifier "
        f"--dataset={dataset} [--data_dir=...]`.")
  if tuple(image_shape) != tuple(extractor.image_shape):
    raise EvalError(
        f"the feature network {extractor.name!r} takes images of shape "
        f"{list(extractor.image_shape)}, but {dataset!r} has {list(image_shape)}.")


def extract(extractor: FeatureExtractor, images: np.ndarray | jax.Array,
            batch_size: int = 1000) -> tuple[jax.Array, jax.Array]:
  """(features [N, F], probs [N, C]) of images [N, H, W, C]: uint8 in [0, 255] or float
  in [0, 1]. Runs one jitted batch shape (the last batch is padded), so any N
  compiles once."""
  n = images.shape[0]
  features, probs = [], []
  for start in range(0, n, batch_size):
    batch = images[start:start + batch_size]
    pad = batch_size - batch.shape[0]
    if pad:
      batch = np.concatenate([np.asarray(batch),
                              np.zeros((pad,) + batch.shape[1:], batch.dtype)])
    f, p = extractor.apply(_unit_float(jnp.asarray(batch)))
    features.append(f[:batch_size - pad])
    probs.append(p[:batch_size - pad])
  return jnp.concatenate(features), jnp.concatenate(probs)


@jax.jit
def _unit_float(images: jax.Array) -> jax.Array:
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images.astype(jnp.float32)
