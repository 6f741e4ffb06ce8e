"""The pure training steps (jaxgan/steps.py): what each update touches, the update orders
and k D-steps per G-step against hand-composed updates, the GAN variants inside the
step (feature matching, clipping, gradient penalty, G's EMA, separate D passes,
class-conditional), and steps_per_call (jaxgan.runtime.compile.StepFunctions).

The real model classes with narrow layers (toolkit.shrink) on 8x8 images; one-shot
compilation (`run_once`) where a program runs once."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import data, losses, models, steps as steps_lib
from jaxgan.config import Config
from jaxgan.runtime.compile import (StepFunctions, compile_once, initial_state,
                                    one_shot_compiler_options)
from jaxgan.state import make_gan
from jaxgan.steps import data_key, make_steps, step_key

import toolkit

N, BATCH, SHAPE = 64, 8, (8, 8, 1)
TOY_SHAPE = (1, 1, 2)
# Two compilations of one computation agree to float32 rounding of the weights (~1e-7
# of them), which is ~1e-4 of an update of ~lr = 2e-4: updates are compared relative to
# their own scale (assert_updates_close), where a wrong update is off by O(1).
UPDATE_RTOL = 1e-3


def run_once(fn, *args):
  """fn(*args) compiled as a one-shot program (jaxgan.runtime.compile.compile_once):
  on CPU a fraction of jit's compile time, for code that runs once."""
  return compile_once(fn, *args)(*args)


# One compiled program copies a whole state into fresh buffers (each donated once).
copy_tree = jax.jit(lambda tree: jax.tree_util.tree_map(jnp.copy, tree))


def max_relative_difference(a, b) -> float:
  """The largest |x - y| / max(|x|, |y|) over the leaves of two trees of one structure,
  each leaf measured against its own scale (0 for equal trees)."""
  worst = 0.0
  for x, y in zip(jax.tree_util.tree_leaves(toolkit.host_tree(a)),
                  jax.tree_util.tree_leaves(toolkit.host_tree(b))):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    scale = max(np.max(np.abs(x), initial=0.0), np.max(np.abs(y), initial=0.0))
    if scale:
      worst = max(worst, float(np.max(np.abs(x - y))) / scale)
  return worst


def assert_updates_close(got, want, start, rtol: float = UPDATE_RTOL) -> None:
  """`got` and `want` moved `start` by the same update: each leaf's change agrees within
  `rtol` of that change's own scale. (Comparing the states themselves, relative to the
  weights' scale, would pass an update wrong by far more than its own size.)"""
  start = toolkit.host_tree(start)

  def change(tree):
    return jax.tree_util.tree_map(
        lambda x, s: np.asarray(x, np.float64) - np.asarray(s, np.float64),
        toolkit.host_tree(tree), start)

  toolkit.assert_trees_close(change(got), change(want), rtol)


def thinnest(gan):
  """The mlp with one narrow D layer and two narrow G layers (one BatchNorm)."""
  return gan._replace(generator=gan.generator.clone(hidden=(8, 16)),
                      discriminator=gan.discriminator.clone(hidden=(16,)))


def build(narrow=toolkit.shrink, **overrides):
  config = dataclasses.replace(Config(batch_size=BATCH, num_steps=1), **overrides)
  config.validate()
  gan = narrow(make_gan(config, SHAPE))
  steps = make_steps(config, gan, N)
  state = initial_state(gan, jax.random.PRNGKey(0))
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (N,) + SHAPE,
                                                         dtype=np.uint8))
  return config, gan, steps, state, images


def real_batch(gan, state, images, batch_number):
  idx = data.batch_indices(data_key(state), batch_number, N, BATCH)
  return data.gather_batch(images, idx, gan.pixel_range)


def toy_setup(**overrides):
  cfg = Config(dataset="toy_ring8", model="toy_mlp", batch_size=8, latent_dim=4,
               num_steps=1, **overrides).validate()
  gan = make_gan(cfg, TOY_SHAPE)
  # Host arrays: slicing them costs no compilation.
  points = np.random.default_rng(5).normal(size=(32,) + TOY_SHAPE).astype(np.float32)
  state = initial_state(gan, jax.random.PRNGKey(0))
  return cfg, gan, make_steps(cfg, gan, 32), state, points


# --------------------------------------------------------------------------- one update
def test_d_step_changes_only_d():
  _, gan, steps, state, images = build()

  def d_step(state, images, key):
    return steps.d_step(state, real_batch(gan, state, images, 0), key)

  new, metrics = run_once(d_step, state, images, jax.random.PRNGKey(1))
  toolkit.assert_trees_equal(new.g, state.g)
  assert int(new.step) == int(state.step) == 0
  assert max_relative_difference(new.d.params, state.d.params) > 1e-4
  assert int(new.d.opt_state.count) == 1
  assert set(metrics) == {"d_loss", "d_real", "d_fake"}
  assert 0.0 < float(metrics["d_real"]) < 1.0  # Probabilities for a BCE loss.


def test_g_step_changes_only_g():
  _, _, steps, state, _ = build()
  new, metrics, fake = run_once(steps.g_step, state, jax.random.PRNGKey(1))
  toolkit.assert_trees_equal(new.d, state.d)
  assert max_relative_difference(new.g.params, state.g.params) > 1e-4
  # BatchNorm running stats.
  assert max_relative_difference(new.g.batch_stats, state.g.batch_stats) > 1e-4
  assert set(metrics) == {"g_loss"}
  fake = np.asarray(fake)
  assert fake.shape == (BATCH,) + SHAPE
  assert fake.min() >= -1.0 and fake.max() <= 1.0


# --------------------------------------------------------------------------- orders
def test_d_then_g_updates_d_first_and_g_against_the_new_d():
  _, gan, steps, state, images = build(update_order="d_then_g")

  def manual(state, images, d_first):
    key = step_key(state)
    real = real_batch(gan, state, images, 0)
    if d_first:
      s, _ = steps.d_step(state, real, jax.random.fold_in(key, 0))
      s, _, _ = steps.g_step(s, jax.random.fold_in(key, 1))
    else:
      s, _, _ = steps.g_step(state, jax.random.fold_in(key, 1))
      s, _ = steps.d_step(s, real, jax.random.fold_in(key, 0))
    return s.replace(step=s.step + 1)

  got, _ = run_once(steps.train_step, state, images)
  want = run_once(lambda s, x: manual(s, x, True), state, images)
  wrong = run_once(lambda s, x: manual(s, x, False), state, images)
  assert int(got.step) == 1
  assert_updates_close(got, want, state)
  assert max_relative_difference(got.g, wrong.g) > 1e-3  # The order is observable.


def test_g_then_d_trains_d_on_the_fakes_made_before_gs_update():
  _, gan, steps, state, images = build(update_order="g_then_d")

  def manual(state, images):
    key = step_key(state)
    s, _, fake = steps.g_step(state, jax.random.fold_in(key, 1))
    s, _ = steps.d_step(s, real_batch(gan, state, images, 0), jax.random.fold_in(key, 0),
                        fake)
    return s.replace(step=s.step + 1)

  def g_only(state):
    return steps.g_step(state, jax.random.fold_in(step_key(state), 1))[0]

  got, _ = run_once(steps.train_step, state, images)
  assert_updates_close(got, run_once(manual, state, images), state)
  # G was updated against the *old* D: it equals a g_step on the initial state.
  assert_updates_close(got.g, run_once(g_only, state).g, state.g)


def test_simultaneous_applies_both_gradients_from_the_same_minibatch():
  _, gan, steps, state, images = build(update_order="simultaneous")
  got, metrics = run_once(steps.train_step, state, images)

  def separately(state, images):
    # Both players see the *initial* opponent and the same z (mlp has no dropout).
    rng = jax.random.fold_in(step_key(state), 0)
    g_only, _, fake = steps.g_step(state, rng)
    d_only, d_metrics = steps.d_step(state, real_batch(gan, state, images, 0), rng, fake)
    return g_only, d_only, d_metrics

  g_only, d_only, d_metrics = run_once(separately, state, images)
  assert_updates_close(got.g, g_only.g, state.g)
  assert_updates_close(got.d, d_only.d, state.d)
  np.testing.assert_allclose(metrics["d_loss"], d_metrics["d_loss"], rtol=1e-6)


@pytest.mark.parametrize("order", ["d_then_g", "g_then_d"])
def test_k_d_steps_per_g_step(order):
  k = 3
  _, _, steps, state, images = build(num_d_steps=k, update_order=order)
  train_step = compile_once(steps.train_step, state, images)
  one, _ = train_step(state, images)
  two, _ = train_step(one, images)
  assert int(one.d.opt_state.count) == k and int(one.g.opt_state.count) == 1
  assert int(two.d.opt_state.count) == 2 * k and int(two.g.opt_state.count) == 2
  assert int(two.step) == 2


def test_k_d_steps_take_consecutive_real_batches():
  k = 2
  _, gan, steps, state, images = build(num_d_steps=k)

  def manual(state, images):
    key = step_key(state)
    s = state
    for i in range(k):
      s, _ = steps.d_step(s, real_batch(gan, state, images, i),
                          jax.random.fold_in(key, i))
    s, _, _ = steps.g_step(s, jax.random.fold_in(key, k))
    return s.replace(step=s.step + 1)

  got, _ = run_once(steps.train_step, state, images)
  assert_updates_close(got, run_once(manual, state, images), state)


def test_paper_mlp_step_runs_with_dropout_and_unit_range_pixels():
  _, gan, steps, state, images = build(model="paper_mlp", update_order="simultaneous",
                                       optimizer="sgd", lr_g=0.1, lr_d=0.1,
                                       lr_decay=1.000004, min_lr=1e-6)
  assert gan.pixel_range == (0.0, 1.0)
  got, metrics = run_once(steps.train_step, state, images)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  z = np.asarray(run_once(lambda key: gan.sample_noise(key, 1000), jax.random.PRNGKey(3)))
  assert np.abs(z).max() <= np.sqrt(3) + 1e-6  # Uniform on [-√3, √3].
  assert z.std() == pytest.approx(1.0, rel=0.05)
  sample = np.asarray(run_once(steps.sample, got, z[:4]))
  assert sample.min() >= 0.0 and sample.max() <= 1.0


# --------------------------------------------------------------------------- variants
def test_feature_matching_g_step_minimises_feature_distance_and_leaves_d():
  _, gan, steps, state, points = toy_setup(feature_matching=True)
  real = points[:8]
  new_state, metrics, fake = run_once(steps.g_step, state, jax.random.PRNGKey(3), real)

  def features(x):
    _, mutated = gan.discriminator.apply({"params": state.d.params}, x, train=True,
                                         mutable=["intermediates"])
    return mutated["intermediates"]["features"][0]

  real_features, fake_features = run_once(lambda a, b: (features(a), features(b)),
                                          real, fake)
  assert real_features.shape == fake_features.shape == (8, 128)
  expected = losses.feature_matching_loss(real_features, fake_features)
  assert float(metrics["g_loss"]) == pytest.approx(float(expected), rel=1e-5)
  toolkit.assert_trees_equal(new_state.d, state.d)
  assert max_relative_difference(new_state.g.params, state.g.params) > 1e-4


def test_wgan_clips_d_before_each_of_its_updates():
  # As the authors' code: clamp_ to [-c, c] at the top of each critic iteration, then
  # the optimizer step (so the critic G sees has had one unclipped update).
  _, gan, steps, state, points = toy_setup(loss="wgan", clip_value=0.003)
  assert max(np.abs(p).max() for p in jax.tree_util.tree_leaves(
      toolkit.host_tree(state.d.params))) > 0.01  # Not clipped at init.
  new_state, metrics = run_once(steps.d_step, state, points[:8], jax.random.PRNGKey(2))

  def by_hand(state, real):  # The same update, by hand, from the clipped critic.
    clipped = jax.tree_util.tree_map(lambda p: jnp.clip(p, -0.003, 0.003),
                                     state.d.params)
    z_key, d_key = jax.random.split(jax.random.PRNGKey(2))
    variables = {"params": state.g.params, "batch_stats": state.g.batch_stats}
    fakes = gan.generator.apply(variables, gan.sample_noise(z_key, 8), train=True,
                                mutable=["batch_stats"])[0]

    def critic_loss(params):
      real_key, fake_key, _ = jax.random.split(d_key, 3)
      d = lambda x, k: gan.discriminator.apply({"params": params}, x, train=True,  # noqa: E731
                                               rngs={"dropout": k})
      return jnp.mean(d(fakes, fake_key)) - jnp.mean(d(real, real_key))

    grads = jax.grad(critic_loss)(clipped)
    updates, _ = gan.d_tx.update(grads, state.d.opt_state, clipped)
    return optax.apply_updates(clipped, updates), critic_loss(clipped)

  want, loss = run_once(by_hand, state, points[:8])  # One program, not ~100 op by op.
  assert_updates_close(new_state.d.params, want, state.d.params)
  assert float(metrics["d_loss"]) == pytest.approx(float(loss), rel=1e-5)


def test_wgan_gp_d_loss_is_the_critic_loss_plus_the_weighted_penalty_by_hand():
  _, gan, steps, state, points = toy_setup(loss="wgan_gp", gp_weight=10.0)
  real, key = points[:8], jax.random.PRNGKey(2)
  _, metrics = run_once(steps.d_step, state, real, key)
  assert set(metrics) == {"d_loss", "d_real", "d_fake", "gp"}

  def by_hand(state, real):
    # d_step's keys: (z, D) = split(key); D's objective: (real pass, fake pass, terms) =
    # split(D key, 3); the penalty: (dropout, eps) = split(terms key).
    z_key, d_key = jax.random.split(key)
    terms_key = jax.random.split(d_key, 3)[2]
    eps_key = jax.random.split(terms_key)[1]
    fake = gan.generator.apply({"params": state.g.params}, gan.sample_noise(z_key, 8),
                               train=True)
    critic = lambda x: gan.discriminator.apply({"params": state.d.params}, x,  # noqa: E731
                                               train=True)
    eps = jax.random.uniform(eps_key, (8, 1, 1, 1))
    x_hat = eps * real + (1.0 - eps) * fake
    # Each example's gradient on its own (no sum over the batch).
    grads = jax.vmap(jax.grad(lambda x: critic(x[None])[0]))(x_hat)
    norms = jnp.sqrt(jnp.sum(grads.reshape(8, -1) ** 2, axis=-1))
    penalty = jnp.mean((norms - 1.0) ** 2)
    return jnp.mean(critic(fake)) - jnp.mean(critic(real)) + 10.0 * penalty, penalty

  d_loss, penalty = run_once(by_hand, state, real)
  assert float(penalty) > 0.01  # Not near zero: a dropped term would show.
  assert float(metrics["gp"]) == pytest.approx(float(penalty), rel=1e-4)
  assert float(metrics["d_loss"]) == pytest.approx(float(d_loss), rel=1e-5)


# --------------------------------------------------------------------------- EMA
def test_ema_decay_warms_up_then_holds():
  assert float(steps_lib.ema_decay_at(0.999, jnp.int32(0))) == pytest.approx(0.1)
  assert float(steps_lib.ema_decay_at(0.999, jnp.int32(10))) == pytest.approx(11 / 20)
  assert float(steps_lib.ema_decay_at(0.999, jnp.int32(10 ** 6))) == pytest.approx(0.999)


def test_ema_update_is_the_convex_combination():
  out = steps_lib.ema_update({"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, 6.0])},
                             0.75)
  np.testing.assert_allclose(out["w"], [1.5, 3.0])


def test_train_step_updates_g_ema_and_sample_uses_it():
  _, gan, steps, state, points = toy_setup(g_ema_decay=0.5)
  init_params = state.g.params
  toolkit.assert_trees_equal(state.g_ema["params"], init_params)  # Starts as G.
  new_state, _ = run_once(steps.train_step, state, points)
  # Step 0: decay = min(0.5, 1/10) = 0.1 (by hand, in NumPy).
  expected = jax.tree_util.tree_map(lambda e, n: 0.1 * e + 0.9 * n,
                                    toolkit.host_tree(init_params),
                                    toolkit.host_tree(new_state.g.params))
  assert_updates_close(new_state.g_ema["params"], expected, init_params)

  def generate(params, z):
    return gan.generator.apply({"params": params}, z, train=False)

  z = jnp.ones((3, 4))
  sample = run_once(steps.sample, new_state, z)
  toolkit.assert_trees_close(sample, run_once(generate, expected, z), 1e-5)
  assert max_relative_difference(sample, run_once(generate, new_state.g.params, z)) > (
      1e-4)  # Not G's own weights.


def test_without_ema_the_state_holds_no_copy():
  _, _, _, state, _ = toy_setup()
  assert state.g_ema == {}


def test_ema_state_can_be_donated_to_the_jitted_step():
  # The EMA copy must not alias G's buffers: a donated buffer cannot be donated twice.
  _, _, steps, state, points = toy_setup(g_ema_decay=0.9)
  step = jax.jit(steps.train_step, donate_argnums=0).lower(state, points).compile(
      one_shot_compiler_options())
  state, metrics = step(state, points)
  state, metrics = step(state, points)
  assert int(state.step) == 2
  assert np.isfinite(float(metrics["d_loss"]))


# --------------------------------------------------------------------------- D passes
def test_batchnorm_d_sees_real_and_fake_in_separate_passes():
  cfg = Config(model="dcgan", batch_size=4, latent_dim=8, num_steps=1).validate()
  gan = make_gan(cfg, (28, 28, 1))
  # Narrow nets keep the test fast; the structure (BatchNorm in D) is the registry's.
  gan = gan._replace(generator=gan.generator.clone(width=4),
                     discriminator=gan.discriminator.clone(width=4))
  assert isinstance(gan.discriminator, models.DCGANDiscriminator)
  steps = make_steps(cfg, gan, 4)
  state = initial_state(gan, jax.random.PRNGKey(0))
  real = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (4, 28, 28, 1)),
                     jnp.float32)
  new_state, metrics = run_once(steps.d_step, state, real, jax.random.PRNGKey(2))

  def real_alone(d, real):  # D on the real batch by itself, in train mode.
    logits = gan.discriminator.apply({"params": d.params, "batch_stats": d.batch_stats},
                                     real, train=True, mutable=["batch_stats"])[0]
    return jnp.mean(jax.nn.sigmoid(logits))

  assert float(metrics["d_real"]) == pytest.approx(float(run_once(real_alone, state.d,
                                                                  real)), rel=1e-5)
  # D's running statistics move (they were discarded before).
  assert max_relative_difference(new_state.d.batch_stats, state.d.batch_stats) > 1e-4


# --------------------------------------------------------------------------- conditional
def test_conditional_gan_trains_on_labels_and_samples_by_class():
  cfg = Config(dataset="toy_ring8", model="toy_mlp", batch_size=8, latent_dim=4,
               num_steps=1, conditional=True).validate()
  gan = make_gan(cfg, TOY_SHAPE, num_classes=8)
  steps = make_steps(cfg, gan, 32)
  state = initial_state(gan, jax.random.PRNGKey(0))
  points = np.random.default_rng(5).normal(size=(32,) + TOY_SHAPE).astype(np.float32)
  labels = (np.arange(32) % 8).astype(np.int32)
  state, metrics = run_once(steps.train_step, state, points, labels)
  assert np.isfinite(float(metrics["d_loss"])) and int(state.step) == 1
  z = jnp.ones((2, 4))
  sample = compile_once(steps.sample, state, z, jnp.zeros(2, jnp.int32))
  a = np.asarray(sample(state, z, jnp.array([0, 0], jnp.int32)))
  b = np.asarray(sample(state, z, jnp.array([0, 5], jnp.int32)))
  np.testing.assert_array_equal(a[0], b[0])  # Same z and class: same point.
  assert np.abs(a[1] - b[1]).max() > 0  # Another class: another point.


# --------------------------------------------------------------------------- performance
def test_steps_per_call_is_bit_identical_to_single_steps():
  # Both lengths compile fully optimised, as the loop compiles them: thinner nets still.
  config, gan, steps, init, images = build(thinnest, num_steps=4, steps_per_call=4)
  assert init.g.batch_stats  # The scan carries BatchNorm statistics too.
  fns = StepFunctions(steps.train_step, config.steps_per_call)
  single = copy_tree(init)
  for _ in range(4):
    single, single_metrics = fns.single(single, images)
  multi, multi_metrics = fns.multi(copy_tree(init), images)
  assert int(multi.step) == int(single.step) == 4
  toolkit.assert_trees_equal(single, multi)
  toolkit.assert_trees_equal(single_metrics, multi_metrics)



@pytest.mark.parametrize("periods, total, steps_per_call, want", [
    ((500, 500, 500, 0), 2000, 100, True),   # 500-step gaps: the scan runs.
    ((1, 2, 2, 0), 2, 100, False),           # A 2-step run never fills a scan.
    ((500, 500, 500, 0), 50, 100, False),    # Shorter than one scan.
    ((0, 0, 0, 0), 100, 100, True),          # No events: one gap, the whole run.
    ((50, 400, 1000, 0), 5000, 100, False),  # Logs every 50 steps: singles only.
    ((100, 0, 0, 0), 1000, 1, False),        # steps_per_call 1 has no scan.
])
def test_the_loop_compiles_the_scan_only_when_a_run_uses_it(periods, total,
                                                             steps_per_call, want):
  fns = StepFunctions(lambda s, x, y: (s, {}), steps_per_call)
  assert fns.uses_multi(periods, total) is want
