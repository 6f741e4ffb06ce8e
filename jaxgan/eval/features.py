"""The feature-network interface that the metrics are computed on.

FID and KID compare penultimate-layer features; the Inception Score and the mode
statistics use class probabilities. Any network that maps images to both can be
plugged in by implementing `FeatureExtractor`: the project's own classifier
(`jaxgan.eval.classifier`, trained on the dataset, offline) and the FID Inception network
(`jaxgan.eval.inception`, pytorch-fid's, from its weights file: any image size, resized
to 299×299, grey repeated to RGB; the 2048-d pool3 features and the 1008-way softmax)
implement it.
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
  image_shape: (H, W, C) of the images it takes (None: any size, 1 or 3 channels).
  num_classes, feature_dim: output sizes.
  accuracy: its test accuracy on `dataset` (None when unknown).
  """

  name: str
  dataset: str | None
  image_shape: tuple[int, int, int] | None
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
  if extractor.image_shape is None:
    if image_shape[-1] not in (1, 3):
      raise EvalError(f"the feature network {extractor.name!r} takes images with 1 or 3 "
                      f"channels, but {dataset!r} has {list(image_shape)}.")
    return
  if tuple(image_shape) != tuple(extractor.image_shape):
    raise EvalError(
        f"the feature network {extractor.name!r} takes images of shape "
        f"{list(extractor.image_shape)}, but {dataset!r} has {list(image_shape)}.")


def extract(extractor: FeatureExtractor, images: np.ndarray | jax.Array,
            batch_size: int | None = None) -> tuple[jax.Array, jax.Array]:
  """(features [N, F], probs [N, C]) of images [N, H, W, C]: uint8 in [0, 255] or float
  in [0, 1]. Runs one jitted batch shape (the last batch is padded), so any N
  compiles once. batch_size: default 1000, or the extractor's `batch_size` where it has
  one (a large network's memory bound; then never more than N, so a few images are not
  padded to a batch of 299x299 work)."""
  n = images.shape[0]
  if batch_size is None:
    own = getattr(extractor, "batch_size", None)
    batch_size = min(n, own) if own else 1000
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
