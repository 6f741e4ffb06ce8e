"""jaxgan as a library: the batch-level step, a user's own modules, and the project
installed with pip into a fresh virtual environment and used from outside the
repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import data, state as state_lib, steps as steps_lib
from jaxgan.config import Config
from jaxgan.state import make_gan

import toolkit
from test_steps import assert_updates_close, run_once

IMAGES = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 1), dtype=np.uint8)


@pytest.mark.parametrize("order, k", [("d_then_g", 2), ("g_then_d", 1)])
def test_batch_step_equals_the_dataset_step_fed_the_same_batches(order, k):
  config = toolkit.tiny_config(model="toy_mlp", update_order=order, num_d_steps=k)
  gan = make_gan(config, (8, 8, 1))
  steps = steps_lib.make_steps(config, gan, len(IMAGES))
  state = run_once(gan.init, jax.random.PRNGKey(0))
  images = jnp.asarray(IMAGES)
  want, want_metrics = run_once(steps.train_step, state, images)

  def step_batches(state, images):  # The k batches train_step gathers for this step.
    return jnp.stack([
        data.gather_batch(images, data.batch_indices(steps_lib.data_key(state),
                                                     state.step * k + i, len(IMAGES),
                                                     config.batch_size), gan.pixel_range)
        for i in range(k)])

  batches = run_once(step_batches, state, images)
  got, got_metrics = run_once(steps.batch_step, state, batches if k > 1 else batches[0])
  # The same updates; two programs, so XLA may round (fuse) the pixel scaling
  # differently: equal to float32 rounding of the update.
  assert_updates_close(got, want, state)
  toolkit.assert_trees_close(got_metrics, want_metrics, rtol=1e-5)
  assert int(got.step) == int(want.step) == 1


def test_batch_step_names_the_shape_it_expects():
  config = toolkit.tiny_config(model="toy_mlp", num_d_steps=2)
  gan = make_gan(config, (8, 8, 1))
  steps = steps_lib.make_steps(config, gan, len(IMAGES))
  state = jax.jit(gan.init)(jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=r"takes the k real batches of one step, \[2, B"):
    steps.batch_step(state, jnp.zeros((8, 8, 8, 1)))
  with pytest.raises(ValueError, match=r"expects real \[2, 8, 8, 8, 1\]"):
    steps.batch_step(state, jnp.zeros((2, 4, 8, 8, 1)))


class PlainG(nn.Module):
  @nn.compact
  def __call__(self, z, train=True):
    return nn.tanh(nn.Dense(8 * 8)(z)).reshape(z.shape[0], 8, 8, 1)


class PlainD(nn.Module):
  @nn.compact
  def __call__(self, x, train=True):
    return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]


def test_a_users_own_modules_train_without_sowing_anything():
  gan = state_lib.gan_from_modules(PlainG(), PlainD(), image_shape=(8, 8, 1),
                                   latent_dim=4, loss="hinge")
  steps = steps_lib.make_steps(Config(batch_size=8), gan, len(IMAGES))
  state = jax.jit(gan.init)(jax.random.PRNGKey(0))
  for _ in range(3):
    state, metrics = jax.jit(steps.train_step)(state, jnp.asarray(IMAGES))
  assert int(state.step) == 3
  assert all(np.isfinite(float(v)) for v in metrics.values())


def test_a_loss_given_as_two_functions_is_minimised_as_written():
  gan = state_lib.gan_from_modules(
      PlainG(), PlainD(), image_shape=(8, 8, 1), latent_dim=4,
      loss=(lambda real, fake: jnp.mean(fake) - jnp.mean(real), lambda fake: -jnp.mean(fake)))
  steps = steps_lib.make_steps(Config(batch_size=8), gan, len(IMAGES))
  state = jax.jit(gan.init)(jax.random.PRNGKey(0))
  _, metrics = jax.jit(steps.train_step)(state, jnp.asarray(IMAGES))
  # d_loss is the user's function of D's raw outputs, which the metrics report as is.
  assert float(metrics["d_loss"]) == pytest.approx(
      float(metrics["d_fake"]) - float(metrics["d_real"]), abs=1e-6)


def test_feature_matching_with_a_d_that_sows_nothing_says_how_to_provide_it():
  gan = state_lib.gan_from_modules(PlainG(), PlainD(), image_shape=(8, 8, 1),
                                   latent_dim=4)
  steps = steps_lib.make_steps(Config(batch_size=8, feature_matching=True), gan,
                               len(IMAGES))
  with pytest.raises(ValueError, match=r"self.sow\('intermediates', 'features', h\)"):
    steps.train_step(gan.init(jax.random.PRNGKey(0)), jnp.asarray(IMAGES))


def test_pip_install_in_a_fresh_venv_then_the_example_runs_from_outside_the_repository(
    tmp_path):
  # README's `pip install .`, its declared dependencies resolved into an empty virtual
  # environment (pinned to requirements.txt's tested versions: -c), so a dependency
  # missing from pyproject.toml fails here. From a copy of what the package is built
  # from: pip builds in the source folder, whose build/ may hold modules since removed.
  src = tmp_path / "src"
  shutil.copytree(os.path.join(toolkit.REPO, "jaxgan"), src / "jaxgan",
                  ignore=shutil.ignore_patterns("__pycache__"))
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(toolkit.REPO, name), src)
  venv = tmp_path / "venv"
  python = str(venv / "bin" / "python")
  try:
    # No pip of its own (ensurepip costs seconds): this pip installs into it (--python),
    # without byte-compiling the ~700 MB it unpacks (--no-compile).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-compile",
         "-c", os.path.join(toolkit.REPO, "requirements.txt"), str(src)],
        capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # From another folder, without PYTHONPATH, in a venv that does not see this
    # interpreter's packages: jaxgan and its dependencies are the ones pip installed.
    env = {k: v for k, v in toolkit.subprocess_env().items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [python, os.path.join(toolkit.REPO, "examples", "train_own_gan.py")],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    installed = sorted(p.parent.name for p in venv.glob("lib/python*/site-packages/*/"
                                                          "__init__.py"))
  finally:
    shutil.rmtree(venv, ignore_errors=True)  # ~700 MB.
  assert {"jaxgan", "jax", "jaxlib", "flax", "optax"} <= set(installed), installed
  # What the example prints: the metrics after 10 train_step and 10 batch_step calls,
  # the step count and the samples' shape.
  lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
  assert set(lines) == {"train_step", "batch_step", "step"}, result.stdout
  assert lines["step"] == "20 samples (4, 8, 8, 1)"
  for name in ("train_step", "batch_step"):
    values = eval(lines[name])  # {'d_fake': ..., ...} as printed.
    assert set(values) == {"d_fake", "d_loss", "d_real", "g_loss"}
    assert all(np.isfinite(v) for v in values.values())
