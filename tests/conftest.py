"""Shared fixtures: tiny IDX datasets written on the fly, and small configs."""

import gzip
import os
import struct
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def idx_bytes(array: np.ndarray) -> bytes:
  """Encodes a uint8 array as an IDX file (magic 0x0000080N, big-endian dims)."""
  header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
  header += struct.pack(f">{array.ndim}I", *array.shape)
  return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx_dir(folder, images: np.ndarray, labels: np.ndarray,
                  test_images=None, test_labels=None, gz: bool = True) -> str:
  """Writes the four MNIST-format IDX files for (images, labels) into folder."""
  os.makedirs(folder, exist_ok=True)
  test_images = images if test_images is None else test_images
  test_labels = labels if test_labels is None else test_labels
  for stem, imgs, labs in (("train", images, labels), ("t10k", test_images, test_labels)):
    for kind, ndim, arr in (("images", 3, imgs), ("labels", 1, labs)):
      name = f"{stem}-{kind}-idx{ndim}-ubyte"
      raw = idx_bytes(arr)
      if gz:
        with gzip.open(os.path.join(folder, name + ".gz"), "wb") as f:
          f.write(raw)
      else:
        with open(os.path.join(folder, name), "wb") as f:
          f.write(raw)
  return str(folder)


@pytest.fixture
def tiny_idx_dir(tmp_path):
  """256 random 28x28 uint8 images with labels 0..9, as gzipped IDX files."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(256, 28, 28), dtype=np.uint8)
  labels = (np.arange(256) % 10).astype(np.uint8)
  return write_idx_dir(tmp_path / "idx", images, labels)


def shrink(gan):
  """The same model classes with narrow layers: the code paths of the real models at a
  fraction of the compile and run time."""
  from jaxgan import models
  g, d = gan.generator, gan.discriminator
  if isinstance(g, models.MLPGenerator):
    g = g.clone(hidden=(16, 32))
  elif isinstance(g, models.PaperGenerator):
    g = g.clone(hidden=(32, 32))
  if isinstance(d, models.MLPDiscriminator):
    d = d.clone(hidden=(32, 16))
  elif isinstance(d, models.PaperDiscriminator):
    d = d.clone(units=16)
  return gan._replace(generator=g, discriminator=d)


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
  """Tests rebuild identical programs many times: a persistent compilation cache turns
  the repeats into cache hits."""
  import jax
  jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla")))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  yield
