"""The in-memory dataset every source returns, and host arrays the device can alias."""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A split held in host memory.

  images: [N, H, W, C] uint8 in [0, 255] (float32 points [N, 1, 1, D] for toy data).
  labels: [N] int32 (or None if unlabelled).
  valid_images: see the field.
  """

  name: str
  images: np.ndarray
  labels: np.ndarray | None
  num_classes: int
  # The held-out validation images of a training split cut by --num_valid (not trained
  # on), else None.
  valid_images: np.ndarray | None = None

  @property
  def num_examples(self) -> int:
    return int(self.images.shape[0])

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.images.shape[1:])  # type: ignore[return-value]


# XLA's CPU client adopts a host array as the device buffer without copying it when the
# array is 64-byte aligned; numpy's large allocations are only 16-byte aligned, and the
# copy cost Fashion-MNIST's 47 MB a second time (peak RSS of a training run).
_DEVICE_ALIGNMENT = 64


def aligned_empty(shape, dtype=np.uint8) -> np.ndarray:
  """np.empty(shape, dtype) starting on a _DEVICE_ALIGNMENT-byte boundary, so that
  jax.device_put on CPU aliases it instead of copying."""
  dtype = np.dtype(dtype)
  nbytes = math.prod(shape) * dtype.itemsize
  raw = np.empty(nbytes + _DEVICE_ALIGNMENT, np.uint8)
  offset = (-raw.ctypes.data) % _DEVICE_ALIGNMENT
  return raw[offset:offset + nbytes].view(dtype).reshape(shape)


def hold_out(ds: Dataset, num_valid: int) -> Dataset:
  """`ds` without its last `num_valid` examples, which become `valid_images` (the
  paper's MNIST split: --num_valid=10000 trains on train[:50000])."""
  if num_valid <= 0:
    return ds
  n = ds.num_examples - num_valid
  return dataclasses.replace(ds, images=ds.images[:n],
                             labels=None if ds.labels is None else ds.labels[:n],
                             valid_images=ds.images[n:])


def subset(ds: Dataset, n: int, seed: int) -> Dataset:
  """A fixed subset of `n` of `ds`'s examples chosen by `seed`, kept in `ds`'s order
  (labels alike; valid_images as they were); `ds` itself when n >= its size.

  Not class-balanced: a uniform draw without replacement, the draw StyleGAN2-ADA makes
  for its --subset (training/dataset.py: np.random.RandomState(seed) shuffles the
  indices, the first n are kept, sorted), so the same (n, seed) picks the same images
  from the same file order. It needs no labels (toy and unlabelled data have the same
  rule); at small n the classes' counts vary around n / C.
  """
  if n >= ds.num_examples:
    return ds
  order = np.arange(ds.num_examples, dtype=np.int64)
  np.random.RandomState(seed).shuffle(order)
  chosen = np.sort(order[:n])
  images = aligned_empty((n,) + ds.images.shape[1:], ds.images.dtype)
  np.take(ds.images, chosen, axis=0, out=images)
  return dataclasses.replace(ds, images=images,
                             labels=None if ds.labels is None else ds.labels[chosen])
