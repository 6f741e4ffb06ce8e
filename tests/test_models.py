"""Models (jaxgan/models/) and what make_gan and Config.validate check about them:
minibatch discrimination, DCGAN sizes, the registry's shape check, model/loss pairings,
class-conditional nets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import models
from jaxgan.config import Config
from jaxgan.errors import ConfigError
from jaxgan.models import dcgan
from jaxgan.runtime.compile import compile_once, initial_state
from jaxgan.state import make_gan
from jaxgan.steps import make_steps

TOY_SHAPE = (1, 1, 2)


def run_once(fn, *args):
  """fn(*args) compiled as a one-shot program (jaxgan.runtime.compile.compile_once):
  on CPU a fraction of jit's compile time, for code that runs once."""
  return compile_once(fn, *args)(*args)


# ------------------------------------------------------------- minibatch discrimination
def test_minibatch_discrimination_appends_num_kernels_features():
  layer = models.MinibatchDiscrimination(num_kernels=7, kernel_dim=3)
  f = jnp.ones((4, 6))
  out, variables = run_once(layer.init_with_output, jax.random.PRNGKey(0), f)
  assert out.shape == (4, 6 + 7)
  assert variables["params"]["T"].shape == (6, 7 * 3)
  np.testing.assert_array_equal(variables["params"]["bias"], -np.ones(7))


def test_minibatch_features_count_identical_neighbours():
  # T = 0: every M row is equal, c_b(i, j) = 1, o_b = N + bias = N - 1.
  layer = models.MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
  f = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
  params = run_once(layer.init, jax.random.PRNGKey(1), f)
  params = jax.tree_util.tree_map(jnp.zeros_like, params)
  params["params"]["bias"] = -jnp.ones(3)
  out = run_once(layer.apply, params, f)
  np.testing.assert_allclose(out[:, 4:], 4.0)
  np.testing.assert_allclose(out[:, :4], f)


def test_minibatch_features_are_sums_of_exp_minus_l1_distances():
  # One kernel of dimension 1 and T = identity column: M_i = f_i[0].
  layer = models.MinibatchDiscrimination(num_kernels=1, kernel_dim=1)
  f = jnp.array([[0.0, 9.0], [1.0, 9.0], [3.0, 9.0]])
  params = {"params": {"T": jnp.array([[1.0], [0.0]]), "bias": jnp.array([0.5])}}
  out = np.asarray(run_once(layer.apply, params, f))[:, 2]
  m = np.array([0.0, 1.0, 3.0])
  expected = np.exp(-np.abs(m[:, None] - m[None, :])).sum(axis=1) + 0.5
  np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_minibatch_features_couple_the_examples_of_a_batch():
  layer = models.MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
  f = jax.random.normal(jax.random.PRNGKey(0), (4, 5))
  params = run_once(layer.init, jax.random.PRNGKey(1), f)
  # d o(x_0) / d x_1 is nonzero: example 0's output sees example 1.
  jac = run_once(jax.jacobian(lambda f: layer.apply(params, f)[0, 5:]), f)
  assert float(jnp.abs(jac[:, 1, :]).sum()) > 0
  assert float(jnp.abs(jac[:, 0, :]).sum()) > 0


def test_discriminator_with_minibatch_disc_has_its_parameters_and_gradients():
  cfg = Config(dataset="toy_ring8", model="toy_mlp", batch_size=8, latent_dim=4,
               num_steps=1, minibatch_kernels=6).validate()
  gan = make_gan(cfg, TOY_SHAPE)
  # Narrow hidden layers (the registry's classes): a fraction of the compile time.
  gan = gan._replace(generator=gan.generator.clone(hidden=(8,)),
                     discriminator=gan.discriminator.clone(hidden=(16,)))
  steps = make_steps(cfg, gan, 32)
  state = initial_state(gan, jax.random.PRNGKey(0))
  points = np.random.default_rng(5).normal(size=(8,) + TOY_SHAPE).astype(np.float32)
  assert state.d.params["minibatch_disc"]["T"].shape == (16, 6 * 5)
  # The head reads the 16 features and the 6 minibatch features.
  assert state.d.params["Dense_1"]["kernel"].shape == (16 + 6, 1)
  new_state, _ = run_once(steps.d_step, state, points, jax.random.PRNGKey(2))
  moved = np.abs(np.asarray(new_state.d.params["minibatch_disc"]["T"])
                 - np.asarray(state.d.params["minibatch_disc"]["T"]))
  assert moved.max() > 0


def test_minibatch_disc_and_batchnorm_d_are_what_couples_a_batch():
  for name, spec in models.MODELS.items():
    assert spec.couples_batch(models.ModelOptions(minibatch_kernels=2, d_norm="none")), (
        name)
  assert not models.MODELS["mlp"].couples_batch(models.ModelOptions())
  assert models.MODELS["dcgan"].couples_batch(models.ModelOptions(d_norm="batch"))
  assert not models.MODELS["dcgan"].couples_batch(models.ModelOptions(d_norm="layer"))


# ---------------------------------------------------------------- DCGAN
@pytest.mark.parametrize("shape,base,stages", [((28, 28, 1), 7, 2), ((32, 32, 3), 4, 3)])
def test_dcgan_output_shapes(shape, base, stages):
  assert dcgan.stages(shape[0]) == (base, stages)
  spec = models.get_model("dcgan")
  g, d = spec.generator(shape), spec.discriminator(shape, models.ModelOptions())
  assert isinstance(g, models.DCGANGenerator) and g.width == 64
  assert isinstance(d, models.DCGANDiscriminator) and d.d_norm == "batch"
  z = jnp.zeros((2, 16))
  g_vars, x = run_once(lambda k, z: g.init_with_output(k, z, train=False)[::-1],
                       jax.random.PRNGKey(0), z)
  assert x.shape == (2,) + shape
  assert np.abs(np.asarray(x)).max() <= 1.0
  d_vars, logits = run_once(lambda k, x: d.init_with_output(k, x, train=False)[::-1],
                            jax.random.PRNGKey(1), x)
  assert logits.shape == (2,)
  assert "batch_stats" in d_vars and "batch_stats" in g_vars


@pytest.mark.parametrize("shape, reason", [
    ((28, 30, 1), "DCGAN needs square images, got 28x30"),
    ((7, 7, 1), "DCGAN needs an even image side above 7, got 7"),
])
def test_dcgan_check_shape_refuses_what_it_cannot_train_on(shape, reason):
  assert models.MODELS["dcgan"].check_shape(shape) == reason
  assert models.MODELS["dcgan"].check_shape((28, 28, 1)) is None
  assert models.MODELS["mlp"].check_shape(shape) is None


def test_dcgan_rejects_non_square_images_naming_model_data_and_shape():
  cfg = Config(model="dcgan", num_steps=1).validate()
  with pytest.raises(ConfigError) as info:
    make_gan(cfg, (28, 30, 1))
  assert str(info.value) == ("--model=dcgan cannot train on the data 'mnist' of shape "
                             "[28, 30, 1]: DCGAN needs square images, got 28x30.")


def test_make_gan_asks_the_registry_not_the_model_name(monkeypatch):
  # A model registered with its own shape check: make_gan applies it as is.
  spec = models.MODELS["mlp"]._replace(
      check_shape=lambda shape: "only 8x8" if shape[:2] != (8, 8) else None)
  monkeypatch.setitem(models.MODELS, "picky", spec)
  cfg = Config(model="picky", num_steps=1).validate()
  with pytest.raises(ConfigError, match=r"--model=picky cannot train .*: only 8x8\."):
    make_gan(cfg, (28, 28, 1))
  gan = make_gan(cfg, (8, 8, 1))
  assert isinstance(gan.generator, models.MLPGenerator)
  assert gan.pixel_range == (-1.0, 1.0) and gan.noise == "normal"


# ---------------------------------------------------------------- config checks
def test_wgan_gp_refuses_batchnorm_d():
  with pytest.raises(ConfigError, match="d_norm=layer"):
    Config(model="dcgan", loss="wgan_gp", num_steps=1).validate()
  Config(model="dcgan", loss="wgan_gp", d_norm="layer", num_steps=1).validate()
  Config(model="dcgan", loss="wgan_gp", d_norm="none", num_steps=1).validate()


def test_wgan_gp_refuses_minibatch_discrimination():
  with pytest.raises(ConfigError, match="--minibatch_kernels=4 --model=mlp"):
    Config(loss="wgan_gp", minibatch_kernels=4, num_steps=1).validate()
  Config(loss="wgan", minibatch_kernels=4, num_steps=1).validate()


def test_label_smoothing_only_with_cross_entropy():
  with pytest.raises(ConfigError, match="label_smoothing"):
    Config(loss="hinge", label_smoothing=0.1, num_steps=1).validate()
  Config(loss="non_saturating", label_smoothing=0.1, num_steps=1).validate()
  Config(loss="minimax", label_smoothing=0.1, num_steps=1).validate()


# ---------------------------------------------------------------- class-conditional
def test_conditional_needs_a_labelled_dataset():
  cfg = Config(dataset="toy_ring8", model="toy_mlp", num_steps=1,
               conditional=True).validate()
  with pytest.raises(ConfigError, match="--conditional needs a dataset with class "
                     "labels, but 'toy_ring8' has 0 classes"):
    make_gan(cfg, TOY_SHAPE, num_classes=0)
  with pytest.raises(ConfigError, match="has 1 classes"):
    make_gan(cfg, TOY_SHAPE, num_classes=1)
  assert make_gan(cfg, TOY_SHAPE, num_classes=2).num_classes == 2


def test_unconditional_gan_ignores_the_datasets_classes():
  cfg = Config(dataset="toy_ring8", model="toy_mlp", num_steps=1).validate()
  gan = make_gan(cfg, TOY_SHAPE, num_classes=8)
  assert gan.num_classes == 0 and isinstance(gan.generator, models.ToyGenerator)


def test_conditional_nets_widen_the_first_layers_by_one_hot_labels():
  cfg = Config(dataset="toy_ring8", model="toy_mlp", latent_dim=4, num_steps=1,
               conditional=True).validate()
  gan = make_gan(cfg, TOY_SHAPE, num_classes=8)
  assert isinstance(gan.generator, models.ConditionalGenerator)
  assert isinstance(gan.discriminator, models.ConditionalDiscriminator)
  state = initial_state(gan, jax.random.PRNGKey(0))
  assert state.g.params["inner"]["Dense_0"]["kernel"].shape == (4 + 8, 128)
  assert state.d.params["inner"]["Dense_0"]["kernel"].shape == (2 + 8, 128)
