"""Feature matching, minibatch discrimination, G EMA, separate D passes, DCGAN shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import dcgan, losses, models, steps as steps_lib
from jaxgan.config import Config
from jaxgan.errors import ConfigError
from jaxgan.layers import MinibatchDiscrimination
from jaxgan.state import make_gan
from jaxgan.steps import make_steps

TOY_SHAPE = (1, 1, 2)


def toy_setup(**overrides):
  cfg = Config(dataset="toy_ring8", model="toy_mlp", batch_size=8, latent_dim=4,
               num_steps=1, **overrides).validate()
  gan = make_gan(cfg, TOY_SHAPE)
  points = jax.random.normal(jax.random.PRNGKey(5), (32,) + TOY_SHAPE)
  return cfg, gan, make_steps(cfg, gan, 32), gan.init(jax.random.PRNGKey(0)), points


# ---------------------------------------------------------------- minibatch discrimination
def test_minibatch_discrimination_appends_num_kernels_features():
  layer = MinibatchDiscrimination(num_kernels=7, kernel_dim=3)
  f = jnp.ones((4, 6))
  out, _ = layer.init_with_output(jax.random.PRNGKey(0), f)
  assert out.shape == (4, 6 + 7)


def test_minibatch_features_count_identical_neighbours():
  # T = 0: every M row is equal, c_b(i, j) = 1, o_b = N + bias = N - 1.
  layer = MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
  f = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
  params = layer.init(jax.random.PRNGKey(1), f)
  params = jax.tree_util.tree_map(jnp.zeros_like, params)
  params["params"]["bias"] = -jnp.ones(3)
  out = layer.apply(params, f)
  np.testing.assert_allclose(out[:, 4:], 4.0)
  np.testing.assert_allclose(out[:, :4], f)


def test_minibatch_features_couple_the_examples_of_a_batch():
  layer = MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
  f = jax.random.normal(jax.random.PRNGKey(0), (4, 5))
  params = layer.init(jax.random.PRNGKey(1), f)
  # d o(x_0) / d x_1 is nonzero: example 0's output sees example 1.
  jac = jax.jacobian(lambda f: layer.apply(params, f)[0, 5:])(f)
  assert float(jnp.abs(jac[:, 1, :]).sum()) > 0
  assert float(jnp.abs(jac[:, 0, :]).sum()) > 0


def test_discriminator_with_minibatch_disc_has_its_parameters_and_gradients():
  _, gan, steps, state, points = toy_setup(minibatch_kernels=6)
  assert state.d.params["minibatch_disc"]["T"].shape == (128, 6 * 5)
  new_state, _ = steps.d_step(state, points[:8], jax.random.PRNGKey(2))
  moved = jnp.abs(new_state.d.params["minibatch_disc"]["T"] - state.d.params["minibatch_disc"]["T"])
  assert float(moved.max()) > 0


# ---------------------------------------------------------------- feature matching
def test_feature_matching_g_step_minimises_feature_distance_and_leaves_d():
  _, gan, steps, state, points = toy_setup(feature_matching=True)
  real = points[:8]
  new_state, metrics, fake = steps.g_step(state, jax.random.PRNGKey(3), real)

  def features(x):
    _, mutated = gan.discriminator.apply({"params": state.d.params}, x, train=True,
                                         mutable=["intermediates"])
    return mutated["intermediates"]["features"][0]

  assert features(real).shape == (8, 128)
  expected = losses.feature_matching_loss(features(real), features(fake))
  assert float(metrics["g_loss"]) == pytest.approx(float(expected), rel=1e-5)
  assert jax.tree_util.tree_all(jax.tree_util.tree_map(
      lambda a, b: bool(jnp.all(a == b)), new_state.d.params, state.d.params))
  delta = jax.tree_util.tree_map(lambda a, b: float(jnp.abs(a - b).max()),
                                 new_state.g.params, state.g.params)
  assert max(jax.tree_util.tree_leaves(delta)) > 0


# ---------------------------------------------------------------- penalties in the step
def test_wgan_clips_d_after_its_update():
  _, _, steps, state, points = toy_setup(loss="wgan", clip_value=0.003)
  new_state, _ = steps.d_step(state, points[:8], jax.random.PRNGKey(2))
  assert max(float(jnp.abs(p).max()) for p in jax.tree_util.tree_leaves(new_state.d.params)) <= 0.003 + 1e-9


def test_wgan_gp_d_loss_includes_weighted_penalty():
  _, _, steps, state, points = toy_setup(loss="wgan_gp", gp_weight=10.0)
  _, metrics = steps.d_step(state, points[:8], jax.random.PRNGKey(2))
  critic = metrics["d_fake"] - metrics["d_real"]  # raw critic means for wgan losses
  assert float(metrics["d_loss"]) == pytest.approx(float(critic + 10.0 * metrics["gp"]), rel=1e-5)


# ---------------------------------------------------------------- EMA
def test_ema_decay_warms_up_then_holds():
  assert float(steps_lib.ema_decay_at(0.999, jnp.int32(0))) == pytest.approx(0.1)
  assert float(steps_lib.ema_decay_at(0.999, jnp.int32(10 ** 6))) == pytest.approx(0.999)


def test_ema_update_is_the_convex_combination():
  out = steps_lib.ema_update({"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, 6.0])}, 0.75)
  np.testing.assert_allclose(out["w"], [1.5, 3.0])


def test_train_step_updates_g_ema_and_sample_uses_it():
  _, gan, steps, state, points = toy_setup(g_ema_decay=0.5)
  images = points
  init_params = state.g.params
  new_state, _ = steps.train_step(state, images)
  # Step 0: decay = min(0.5, 1/10) = 0.1.
  expected = jax.tree_util.tree_map(lambda e, n: 0.1 * e + 0.9 * n, init_params,
                                    new_state.g.params)
  for a, b in zip(jax.tree_util.tree_leaves(new_state.g_ema["params"]),
                  jax.tree_util.tree_leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  z = jnp.ones((3, 4))
  np.testing.assert_allclose(steps.sample(new_state, z),
                             gan.generator.apply({"params": expected}, z, train=False),
                             rtol=1e-5, atol=1e-6)


def test_without_ema_the_state_holds_no_copy():
  _, _, _, state, _ = toy_setup()
  assert state.g_ema == {}


# ---------------------------------------------------------------- separate D passes
def test_batchnorm_d_sees_real_and_fake_in_separate_passes():
  cfg = Config(model="dcgan", batch_size=4, latent_dim=8, num_steps=1).validate()
  gan = make_gan(cfg, (28, 28, 1))
  # Narrow nets keep the test fast; the structure (BatchNorm in D) is the registry's.
  gan = gan._replace(generator=dcgan.DCGANGenerator((28, 28, 1), width=4),
                     discriminator=dcgan.DCGANDiscriminator(width=4))
  steps = make_steps(cfg, gan, 4)
  state = gan.init(jax.random.PRNGKey(0))
  real = jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28, 1), minval=-1, maxval=1)
  new_state, metrics = jax.jit(steps.d_step)(state, real, jax.random.PRNGKey(2))
  alone = gan.discriminator.apply({"params": state.d.params, "batch_stats": state.d.batch_stats},
                                  real, train=True, mutable=["batch_stats"])[0]
  assert float(metrics["d_real"]) == pytest.approx(float(jnp.mean(jax.nn.sigmoid(alone))), rel=1e-5)
  # D's running statistics move (they were discarded before).
  moved = jax.tree_util.tree_map(lambda a, b: float(jnp.abs(a - b).max()),
                                 new_state.d.batch_stats, state.d.batch_stats)
  assert max(jax.tree_util.tree_leaves(moved)) > 0


# ---------------------------------------------------------------- DCGAN
@pytest.mark.parametrize("shape,base,stages", [((28, 28, 1), 7, 2), ((32, 32, 3), 4, 3)])
def test_dcgan_output_shapes(shape, base, stages):
  assert dcgan.stages(shape[0]) == (base, stages)
  spec = models.get_model("dcgan")
  g, d = spec.generator(shape), spec.discriminator(shape, models.ModelOptions())
  z = jnp.zeros((2, 16))
  # One jit per network: compiling the whole init + apply beats op-by-op dispatch.
  g_vars, x = jax.jit(lambda k, z: g.init_with_output(k, z, train=False)[::-1])(
      jax.random.PRNGKey(0), z)
  assert x.shape == (2,) + shape
  assert float(jnp.abs(x).max()) <= 1.0
  d_vars, logits = jax.jit(lambda k, x: d.init_with_output(k, x, train=False)[::-1])(
      jax.random.PRNGKey(1), x)
  assert logits.shape == (2,)
  assert "batch_stats" in d_vars and "batch_stats" in g_vars


def test_dcgan_rejects_non_square_images():
  cfg = Config(model="dcgan", num_steps=1).validate()
  with pytest.raises(ConfigError, match="square"):
    make_gan(cfg, (28, 30, 1))


# ---------------------------------------------------------------- config checks
def test_wgan_gp_refuses_batchnorm_d():
  with pytest.raises(ConfigError, match="d_norm=layer"):
    Config(model="dcgan", loss="wgan_gp", num_steps=1).validate()
  Config(model="dcgan", loss="wgan_gp", d_norm="layer", num_steps=1).validate()


def test_label_smoothing_only_with_cross_entropy():
  with pytest.raises(ConfigError, match="label_smoothing"):
    Config(loss="hinge", label_smoothing=0.1, num_steps=1).validate()
  Config(loss="non_saturating", label_smoothing=0.1, num_steps=1).validate()


# ---------------------------------------------------------------- class-conditional
def test_conditional_gan_trains_on_labels_and_samples_by_class():
  cfg = Config(dataset="toy_ring8", model="toy_mlp", batch_size=8, latent_dim=4,
               num_steps=1, conditional=True).validate()
  gan = make_gan(cfg, TOY_SHAPE, num_classes=8)
  steps = make_steps(cfg, gan, 32)
  state = gan.init(jax.random.PRNGKey(0))
  # The one-hot code widens the first layers' inputs by K = 8.
  assert state.g.params["inner"]["Dense_0"]["kernel"].shape == (4 + 8, 128)
  assert state.d.params["inner"]["Dense_0"]["kernel"].shape == (2 + 8, 128)
  points = jax.random.normal(jax.random.PRNGKey(5), (32,) + TOY_SHAPE)
  labels = jnp.arange(32, dtype=jnp.int32) % 8
  state, metrics = steps.train_step(state, points, labels)
  assert np.isfinite(float(metrics["d_loss"]))
  z = jnp.ones((2, 4))
  a = steps.sample(state, z, jnp.array([0, 0], jnp.int32))
  b = steps.sample(state, z, jnp.array([0, 5], jnp.int32))
  np.testing.assert_allclose(a[0], b[0])
  assert float(jnp.abs(a[1] - b[1]).max()) > 0


def test_conditional_needs_a_labelled_dataset():
  cfg = Config(dataset="toy_ring8", model="toy_mlp", num_steps=1, conditional=True).validate()
  with pytest.raises(ConfigError, match="conditional"):
    make_gan(cfg, TOY_SHAPE, num_classes=0)


def test_ema_state_can_be_donated_to_the_jitted_step():
  # The EMA copy must not alias G's buffers: a donated buffer cannot be donated twice.
  _, _, steps, state, points = toy_setup(g_ema_decay=0.9)
  step = jax.jit(steps.train_step, donate_argnums=0)
  state, metrics = step(state, points)
  state, metrics = step(state, points)
  assert int(state.step) == 2
