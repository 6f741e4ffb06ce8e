"""The update orders of the train step, and k D-steps per G-step."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import data
from jaxgan.config import Config
from jaxgan.state import make_gan
from jaxgan.steps import data_key, make_steps, step_key

from conftest import shrink

N, BATCH = 64, 8


def build(**overrides):
  config = dataclasses.replace(Config(batch_size=BATCH, num_steps=1), **overrides)
  config.validate()
  gan = shrink(make_gan(config, (28, 28, 1)))
  steps = make_steps(config, gan, N)
  state = jax.jit(gan.init)(jax.random.PRNGKey(0))
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (N, 28, 28, 1),
                                                         dtype=np.uint8))
  return config, gan, steps, state, images


def real_batch(gan, state, images, batch_number):
  idx = data.batch_indices(data_key(state), batch_number, N, BATCH)
  return data.gather_batch(images, idx, gan.pixel_range)


def leaves(tree):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def same(a, b, tol=0.0):
  return all(np.allclose(x, y, rtol=tol, atol=tol) if tol else np.array_equal(x, y)
             for x, y in zip(leaves(a), leaves(b)))


def test_d_step_changes_only_d():
  _, gan, steps, state, images = build()
  new, metrics = jax.jit(steps.d_step)(state, real_batch(gan, state, images, 0),
                                       jax.random.PRNGKey(1))
  assert same(new.g, state.g)
  assert not same(new.d.params, state.d.params)
  assert set(metrics) == {"d_loss", "d_real", "d_fake"}


def test_g_step_changes_only_g():
  _, _, steps, state, _ = build()
  new, metrics, fake = jax.jit(steps.g_step)(state, jax.random.PRNGKey(1))
  assert same(new.d, state.d)
  assert not same(new.g.params, state.g.params)
  assert not same(new.g.batch_stats, state.g.batch_stats)  # BatchNorm running stats.
  assert fake.shape == (BATCH, 28, 28, 1)
  assert float(jnp.min(fake)) >= -1.0 and float(jnp.max(fake)) <= 1.0


def test_d_then_g_updates_d_first_and_g_against_the_new_d():
  _, gan, steps, state, images = build(update_order="d_then_g")
  got, _ = jax.jit(steps.train_step)(state, images)

  def manual(state, images, d_first):
    key = step_key(state)
    real = real_batch(gan, state, images, 0)
    if d_first:
      s, _ = steps.d_step(state, real, jax.random.fold_in(key, 0))
      s, _, _ = steps.g_step(s, jax.random.fold_in(key, 1))
    else:
      s, _, _ = steps.g_step(state, jax.random.fold_in(key, 1))
      s, _ = steps.d_step(s, real, jax.random.fold_in(key, 0))
    return s

  want = jax.jit(manual, static_argnums=2)(state, images, True)
  wrong = jax.jit(manual, static_argnums=2)(state, images, False)
  assert int(got.step) == 1
  assert same(got.d, want.d, 1e-6) and same(got.g, want.g, 1e-6)
  assert not same(got.g.params, wrong.g.params, 1e-6)  # The order is observable.


def test_g_then_d_trains_d_on_the_fakes_made_before_gs_update():
  _, gan, steps, state, images = build(update_order="g_then_d")
  got, _ = jax.jit(steps.train_step)(state, images)

  def manual(state, images):
    key = step_key(state)
    s, _, fake = steps.g_step(state, jax.random.fold_in(key, 1))
    s, _ = steps.d_step(s, real_batch(gan, state, images, 0), jax.random.fold_in(key, 0),
                        fake)
    return s

  want = jax.jit(manual)(state, images)
  assert same(got.d, want.d, 1e-6) and same(got.g, want.g, 1e-6)
  # G was updated against the *old* D: its params equal a g_step on the initial state.
  g_only, _, _ = jax.jit(steps.g_step)(state, jax.random.fold_in(step_key(state), 1))
  assert same(got.g.params, g_only.g.params, 1e-6)


def test_simultaneous_applies_both_gradients_from_the_same_minibatch():
  _, gan, steps, state, images = build(update_order="simultaneous")
  got, metrics = jax.jit(steps.train_step)(state, images)
  # Both players see the *initial* opponent and the same z (mlp has no dropout).
  rng = jax.random.fold_in(step_key(state), 0)
  g_only, _, fake = jax.jit(steps.g_step)(state, rng)
  d_only, d_metrics = jax.jit(steps.d_step)(state, real_batch(gan, state, images, 0),
                                            rng, fake)
  assert same(got.g, g_only.g, 1e-5)
  assert same(got.d, d_only.d, 1e-5)
  np.testing.assert_allclose(metrics["d_loss"], d_metrics["d_loss"], rtol=1e-6)


@pytest.mark.parametrize("order", ["d_then_g", "g_then_d"])
def test_k_d_steps_per_g_step(order):
  k = 3
  _, gan, steps, state, images = build(num_d_steps=k, update_order=order)
  got, _ = jax.jit(steps.train_step)(state, images)
  assert int(got.d.opt_state.count) == k
  assert int(got.g.opt_state.count) == 1
  got2, _ = jax.jit(steps.train_step)(got, images)
  assert int(got2.d.opt_state.count) == 2 * k and int(got2.g.opt_state.count) == 2


def test_k_d_steps_take_consecutive_real_batches():
  k = 2
  _, gan, steps, state, images = build(num_d_steps=k)
  got, _ = jax.jit(steps.train_step)(state, images)

  def manual(state, images):
    key = step_key(state)
    s = state
    for i in range(k):
      s, _ = steps.d_step(s, real_batch(gan, state, images, i), jax.random.fold_in(key, i))
    s, _, _ = steps.g_step(s, jax.random.fold_in(key, k))
    return s

  want = jax.jit(manual)(state, images)
  assert same(got.d, want.d, 1e-6) and same(got.g, want.g, 1e-6)


def test_paper_mlp_step_runs_with_dropout_and_unit_range_pixels():
  _, gan, steps, state, images = build(model="paper_mlp", update_order="simultaneous",
                                       optimizer="sgd", lr_g=0.1, lr_d=0.1,
                                       lr_decay=1.000004, min_lr=1e-6)
  assert gan.pixel_range == (0.0, 1.0)
  got, metrics = jax.jit(steps.train_step)(state, images)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  z = gan.sample_noise(jax.random.PRNGKey(3), 1000)
  assert float(jnp.max(jnp.abs(z))) <= np.sqrt(3) + 1e-6  # uniform on [-√3, √3].
  sample = steps.sample(got, z[:4])
  assert float(sample.min()) >= 0.0 and float(sample.max()) <= 1.0
