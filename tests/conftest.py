"""Shared fixtures (the helpers themselves are in toolkit.py)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import toolkit  # noqa: E402


@pytest.fixture
def tiny_idx_dir(tmp_path):
  """256 random 28x28 uint8 images with labels 0..9, as gzipped IDX files."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(256, 28, 28), dtype=np.uint8)
  labels = (np.arange(256) % 10).astype(np.uint8)
  return toolkit.write_idx_dir(tmp_path / "idx", images, labels, gz=True)


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
  """Tests rebuild identical programs many times: a persistent compilation cache turns
  the repeats into cache hits."""
  import jax
  jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla")))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  yield
