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
def compilation_cache():
  """Tests rebuild identical programs many times, in both xdist workers and in their
  subprocesses: one persistent compilation cache for all of them (toolkit.JAX_CACHE)
  turns the repeats into cache hits."""
  toolkit.use_test_compilation_cache()
  yield


@pytest.fixture(scope="session")
def one_device_population(tmp_path_factory):
  """(config, workdir, final state) of a 4-member population (test_sweep.SPECS) trained
  2 steps on this process's one device: what the 8-fake-device and the two-process runs
  are compared with (both tests are in the xdist group "devices", so one worker trains
  it once)."""
  from jaxgan.runtime import loop
  from test_sweep import SPECS
  root = tmp_path_factory.mktemp("one_device")
  data_dir = toolkit.write_classes_folder(str(root / "classes"))
  config = toolkit.tiny_config(data_dir, num_steps=2, sweep=SPECS)
  workdir = str(root / "one")
  return config, workdir, loop.run(config, workdir)


@pytest.fixture(scope="session")
def one_device_initial_state(one_device_population):
  """The population state that one_device_population (and the runs compared with it)
  trained from: what lets them compare updates rather than states."""
  from jaxgan import data
  from jaxgan.config import sweep_members
  from jaxgan.runtime.compile import compile_once
  from jaxgan.state import make_gan
  from jaxgan.sweep import population
  config = one_device_population[0]
  members = sweep_members(config)
  shape = data.load_dataset(config.dataset, config.data_dir, "train").image_shape
  init = population.init_fn(make_gan(members[0].config, shape), members)
  return compile_once(init)()


# The modules whose tests run longest (subprocesses: several processes, 10-20 s each;
# test_library_use: a pip install into a fresh virtual environment) come first. xdist
# hands tests out in collection order, so the suite then ends on short tests; in
# alphabetical order it ended on the two longest while the other worker idled.
LONG_FIRST = ("test_sweep_multihost.py", "test_sweep_devices.py", "test_library_use.py",
              "test_readme_commands.py", "test_runtime_reliability.py", "test_sweep.py",
              "test_cli.py", "test_runtime_loop.py")


def pytest_collection_modifyitems(items):
  def rank(item):
    name = item.path.name
    return LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST)
  items.sort(key=rank)  # Stable: each module keeps its own order.
