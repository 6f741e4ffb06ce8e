"""Shared fixtures (the helpers themselves are in toolkit.py)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import toolkit  # noqa: E402


# Module fixtures that train or evaluate (seconds each). xdist builds a module fixture
# once per worker that runs a test using it, so the tests that share one are kept on one
# worker (an xdist_group per fixture, and per parameter where it has some; pyproject.toml
# runs the suite with --dist=loadgroup).
SHARED_FIXTURES = {"finished", "evaluated", "reference", "toy_sweep", "trained"}


@pytest.hookimpl(tryfirst=True)  # Before xdist reads the groups.
def pytest_collection_modifyitems(items):
  for item in items:
    shared = sorted(set(getattr(item, "fixturenames", ())) & SHARED_FIXTURES)
    if not shared or item.get_closest_marker("xdist_group"):
      continue
    params = getattr(getattr(item, "callspec", None), "params", {})
    group = ",".join(f"{n}[{params[n]}]" if n in params else n for n in shared)
    item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}:{group}"))


@pytest.fixture
def tiny_idx_dir(tmp_path):
  """256 random 28x28 uint8 images with labels 0..9, as gzipped IDX files."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(256, 28, 28), dtype=np.uint8)
  labels = (np.arange(256) % 10).astype(np.uint8)
  return toolkit.write_idx_dir(tmp_path / "idx", images, labels, gz=True)


@pytest.fixture(scope="session", autouse=True)
def compilation_cache():
  """Tests rebuild identical programs many times: a persistent compilation cache turns
  the repeats into cache hits. It is the one the subprocesses use (toolkit.JAX_CACHE), so
  a program compiled by either xdist worker or by a command run as a subprocess is
  compiled once (the cache key is the HLO and the compile options)."""
  import jax
  jax.config.update("jax_compilation_cache_dir", toolkit.JAX_CACHE)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  yield
