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

import toolkit

TOY_SHAPE = (1, 1, 2)


def run_once(fn, *args):
  """fn(*args) compiled as a one-shot program (jaxgan.runtime.compile.compile_once):
  on CPU a fraction of jit's compile time, for code that runs once."""
  return compile_once(fn, *args)(*args)


# ------------------------------------------------------------- minibatch discrimination
def reference_minibatch_layer(x, theta, log_weight_scale, b, init=False):
  """NumPy transcription of improved-gan's nn.MinibatchLayer.get_output_for (Theano):
  returns (output, log_weight_scale, b) after the layer's init pass when init=True."""
  w = theta * (np.exp(log_weight_scale) / np.sqrt(np.sum(np.square(theta), axis=0)))[None]
  activation = np.tensordot(x, w, [[1], [0]])  # [N, B, C]
  abs_dif = (np.sum(np.abs(activation[:, :, :, None]
                           - activation.transpose(1, 2, 0)[None]), axis=2)
             + 1e6 * np.eye(x.shape[0])[:, None, :])  # [N, B, N]
  if init:
    mean_min_abs_dif = 0.5 * np.mean(np.min(abs_dif, axis=2), axis=0)
    abs_dif /= mean_min_abs_dif[None, :, None]
    log_weight_scale = log_weight_scale - np.log(mean_min_abs_dif)[:, None]
  f = np.sum(np.exp(-abs_dif), axis=2)
  if init:
    mf = np.mean(f, axis=0)
    f -= mf[None]
    b = -mf
  else:
    f += b[None]
  return np.concatenate([x, f], axis=1), log_weight_scale, b


def test_minibatch_discrimination_matches_the_authors_layer_and_its_data_init():
  layer = models.MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
  x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (6, 4)), np.float64)
  out, variables = run_once(layer.init_with_output, jax.random.PRNGKey(1),
                            jnp.asarray(x, jnp.float32))
  p = jax.tree_util.tree_map(np.asarray, variables["params"])
  assert p["theta"].shape == (4, 3, 2) and p["bias"].shape == (3,)
  # The init pass on real data sets the scale and the bias as the authors' init does.
  want_out, want_scale, want_bias = reference_minibatch_layer(
      x, p["theta"], np.zeros((3, 2)), np.full(3, -1.0), init=True)
  np.testing.assert_allclose(p["log_weight_scale"], want_scale, rtol=1e-5)
  np.testing.assert_allclose(p["bias"], want_bias, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out, want_out, rtol=1e-5, atol=1e-6)
  # Applied to another batch with those parameters: the authors' forward pass.
  x2 = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (5, 4)), np.float64)
  got = run_once(layer.apply, variables, jnp.asarray(x2, jnp.float32))
  want, _, _ = reference_minibatch_layer(x2, p["theta"], p["log_weight_scale"], p["bias"])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_an_example_is_not_compared_with_itself():
  # Identical examples: each sees N - 1 others at distance 0 (its own 0 is excluded).
  layer = models.MinibatchDiscrimination(num_kernels=2, kernel_dim=3)
  variables = run_once(layer.init, jax.random.PRNGKey(1),
                       jax.random.normal(jax.random.PRNGKey(0), (8, 4)))
  variables = {"params": {**variables["params"], "bias": jnp.zeros(2)}}
  out = run_once(layer.apply, variables, jnp.ones((5, 4)))
  np.testing.assert_allclose(out[:, 4:], 4.0, rtol=1e-6)


def test_minibatch_features_couple_the_examples_of_a_batch():
  layer = models.MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
  f = jax.random.normal(jax.random.PRNGKey(0), (4, 5))
  params = run_once(layer.init, jax.random.PRNGKey(1), f)
  # d o(x_0) / d x_1 is nonzero: example 0's output sees example 1.
  jac = run_once(jax.jacobian(lambda f: layer.apply(params, f)[0, 5:]), f)
  assert float(jnp.abs(jac[:, 1, :]).sum()) > 0
  assert float(jnp.abs(jac[:, 0, :]).sum()) > 0


def test_a_gan_with_minibatch_disc_initialises_it_on_real_data_and_trains_it():
  cfg = Config(dataset="toy_ring8", model="toy_mlp", batch_size=8, latent_dim=4,
               num_steps=1, minibatch_kernels=6).validate()
  gan = make_gan(cfg, TOY_SHAPE)
  assert gan.needs_data and gan.init_examples == 500
  # Narrow hidden layers (the registry's classes): a fraction of the compile time.
  gan = gan._replace(generator=gan.generator.clone(hidden=(8,)),
                     discriminator=gan.discriminator.clone(hidden=(16,)))
  points = np.random.default_rng(5).normal(size=(64,) + TOY_SHAPE).astype(np.float32)
  state = run_once(gan.init, jax.random.PRNGKey(0), points)
  mbd = state.d.params["minibatch_disc"]
  assert mbd["theta"].shape == (16, 6, 5)
  # Data-dependent: the init on the run's first real examples, not the dummy batch.
  dummy = run_once(gan.init, jax.random.PRNGKey(0))
  assert not np.allclose(mbd["log_weight_scale"],
                         dummy.d.params["minibatch_disc"]["log_weight_scale"])
  # The head reads the 16 features and the 6 minibatch features.
  assert state.d.params["Dense_1"]["kernel"].shape == (16 + 6, 1)
  steps = make_steps(cfg, gan, 64)
  new_state, _ = run_once(steps.d_step, state, points[:8], jax.random.PRNGKey(2))
  for name in ("theta", "log_weight_scale", "bias"):
    assert np.abs(np.asarray(new_state.d.params["minibatch_disc"][name])
                  - np.asarray(mbd[name])).max() > 0, name


def test_minibatch_disc_and_batchnorm_d_are_what_couples_a_batch():
  for name, spec in models.MODELS.items():
    assert spec.couples_batch(models.ModelOptions(minibatch_kernels=2, d_norm="none")), (
        name)
  assert not models.MODELS["mlp"].couples_batch(models.ModelOptions())
  assert models.MODELS["dcgan"].couples_batch(models.ModelOptions(d_norm="batch"))
  assert not models.MODELS["dcgan"].couples_batch(models.ModelOptions(d_norm="layer"))


# ------------------------------------------------------------- mlp = PyTorch-GAN gan.py
# gan.py's networks as torch computes them, transcribed into float64 NumPy (CI has no
# torch; tests/test_bench_torch.py compares parameter shapes with torch itself when an
# interpreter with torch is there):
#   block(i, o, normalize=True): nn.Linear(i, o), [nn.BatchNorm1d(o, 0.8)], LeakyReLU(0.2)
#   G: block(100, 128, normalize=False), block(128, 256), block(256, 512),
#      block(512, 1024), nn.Linear(1024, 784), Tanh
#   D: nn.Linear(784, 512), LeakyReLU(0.2), nn.Linear(512, 256), LeakyReLU(0.2),
#      nn.Linear(256, 1), Sigmoid
# nn.BatchNorm1d(o, 0.8) passes 0.8 as eps; momentum is torch's default 0.1. In training
# it normalises with the batch's biased variance and updates
#   running_mean <- 0.9 running_mean + 0.1 mean,
#   running_var  <- 0.9 running_var  + 0.1 unbiased variance (ddof 1);
# in eval mode it normalises with the running statistics.
GAN_PY_EPS, GAN_PY_MOMENTUM, GAN_PY_SLOPE = 0.8, 0.1, 0.2


def torch_linear_init_bound(fan_in: int) -> float:
  """nn.Linear.reset_parameters: weight kaiming_uniform_(a=sqrt(5)), i.e. U(-b, b) with
  b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)); bias U(-1/sqrt(fan_in), ...)."""
  gain = np.sqrt(2.0 / (1.0 + 5.0))
  weight_bound = gain * np.sqrt(3.0 / fan_in)
  assert np.isclose(weight_bound, 1.0 / np.sqrt(fan_in))  # Weight and bias: one bound.
  return weight_bound


def torch_leaky_relu(x):
  return np.where(x >= 0, x, GAN_PY_SLOPE * x)


def torch_batchnorm1d(x, gamma, beta, running_mean, running_var, train: bool):
  """(output, new running_mean, new running_var) of nn.BatchNorm1d(F, 0.8) on [B, F]."""
  if not train:
    return ((x - running_mean) / np.sqrt(running_var + GAN_PY_EPS) * gamma + beta,
            running_mean, running_var)
  mean, var, unbiased = x.mean(0), x.var(0), x.var(0, ddof=1)
  m = GAN_PY_MOMENTUM
  return ((x - mean) / np.sqrt(var + GAN_PY_EPS) * gamma + beta,
          (1 - m) * running_mean + m * mean, (1 - m) * running_var + m * unbiased)


def gan_py_generator(z, linears, norms, train: bool):
  """gan.py's Generator.forward. linears: [(weight [out, in], bias)] x 5; norms:
  [(gamma, beta, running_mean, running_var)] for blocks 2-4. Returns (img, new norms)."""
  x, new_norms = z, []
  for i, (w, b) in enumerate(linears[:-1]):
    x = x @ w.T + b
    if i > 0:  # block(latent_dim, 128, normalize=False): none on the first block.
      gamma, beta, rm, rv = norms[i - 1]
      x, rm, rv = torch_batchnorm1d(x, gamma, beta, rm, rv, train)
      new_norms.append((gamma, beta, rm, rv))
    x = torch_leaky_relu(x)
  w, b = linears[-1]
  return np.tanh(x @ w.T + b), new_norms


def gan_py_discriminator(img, linears):
  """gan.py's Discriminator.forward: the validity (probability) of each image."""
  x = img.reshape(img.shape[0], -1)
  for w, b in linears[:-1]:
    x = torch_leaky_relu(x @ w.T + b)
  w, b = linears[-1]
  return 1.0 / (1.0 + np.exp(-(x @ w.T + b)[:, 0]))


def as_torch_linears(params, count: int):
  """jaxgan's TorchLinear_i (kernel [in, out]) as torch's (weight [out, in], bias)."""
  return [(np.asarray(params[f"TorchLinear_{i}"]["kernel"], np.float64).T,
           np.asarray(params[f"TorchLinear_{i}"]["bias"], np.float64))
          for i in range(count)]


@pytest.fixture(scope="module")
def gan_py_nets():
  """gan.py's G and D at full size (latent 100, 28x28x1) as jaxgan's mlp builds them,
  initialised as a run initialises them."""
  gan = make_gan(Config(model="mlp", latent_dim=100, num_steps=1).validate(), (28, 28, 1))
  g, d = gan.generator, gan.discriminator
  assert isinstance(g, models.MLPGenerator) and isinstance(d, models.MLPDiscriminator)
  g_vars, d_vars = run_once(
      lambda k: (g.init(k, jnp.zeros((2, 100)), train=False),
                 d.init(jax.random.fold_in(k, 1), jnp.zeros((2, 28, 28, 1)), train=False)),
      jax.random.PRNGKey(0))
  return g, d, toolkit.host_tree(g_vars), toolkit.host_tree(d_vars)


def test_mlp_layers_are_gan_pys_with_torchs_linear_init(gan_py_nets):
  _, _, g_vars, d_vars = gan_py_nets
  g_params, d_params = g_vars["params"], d_vars["params"]
  widths = {"g": [100, 128, 256, 512, 1024, 784], "d": [784, 512, 256, 1]}
  # BatchNorm after G's layers 2, 3 and 4 only (its width is the layer's output's).
  assert sorted(g_params) == sorted([f"TorchLinear_{i}" for i in range(5)]
                                    + [f"BatchNorm_{i}" for i in range(3)])
  assert [g_params[f"BatchNorm_{i}"]["scale"].shape for i in range(3)] == [
      (256,), (512,), (1024,)]
  assert sorted(g_vars["batch_stats"]) == [f"BatchNorm_{i}" for i in range(3)]
  assert sorted(d_params) == [f"TorchLinear_{i}" for i in range(3)]
  for params, sizes in ((g_params, widths["g"]), (d_params, widths["d"])):
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
      layer = params[f"TorchLinear_{i}"]
      assert layer["kernel"].shape == (fan_in, fan_out)
      bound = torch_linear_init_bound(fan_in)
      for name in ("kernel", "bias"):
        x = np.asarray(layer[name], np.float64).ravel()
        n = x.size
        where = f"TorchLinear_{i}/{name} (fan_in {fan_in})"
        assert np.abs(x).max() <= bound, where
        if n < 100:  # D's last bias has 1 value: only its bound says anything.
          continue
        # U(-b, b): |x| reaches within 20/n of b (failing with probability e^-20), its
        # std is b/sqrt(3) (to 6 standard errors of a sample std), its mean 0.
        assert np.abs(x).max() >= bound * (1 - 20 / n), where
        assert x.std() == pytest.approx(bound / np.sqrt(3), rel=2.7 / np.sqrt(n)), where
        assert abs(x.mean()) < 6 * bound / np.sqrt(3 * n), where


def test_mlp_forward_passes_and_batchnorm_statistics_are_gan_pys(gan_py_nets):
  g, d, g_vars, d_vars = gan_py_nets
  rng = np.random.default_rng(0)
  # BatchNorm's affine parameters and running statistics away from their init (1, 0;
  # 0, 1), so each enters the comparison.
  g_vars = jax.tree_util.tree_map(np.copy, g_vars)
  for i, width in enumerate((256, 512, 1024)):
    g_vars["params"][f"BatchNorm_{i}"] = {
        "scale": rng.uniform(0.5, 1.5, width).astype(np.float32),
        "bias": rng.normal(0, 0.3, width).astype(np.float32)}
    g_vars["batch_stats"][f"BatchNorm_{i}"] = {
        "mean": rng.normal(0, 0.2, width).astype(np.float32),
        "var": rng.uniform(0.05, 0.5, width).astype(np.float32)}
  z = rng.normal(size=(16, 100)).astype(np.float32)

  def passes(g_vars, d_vars, z):  # One program for the three passes.
    train, mutated = g.apply(g_vars, z, train=True, mutable=["batch_stats"])
    sample = g.apply(g_vars, z, train=False)
    return train, mutated["batch_stats"], sample, d.apply(d_vars, train, train=True)

  train_img, new_stats, eval_img, logits = toolkit.host_tree(
      run_once(passes, g_vars, d_vars, z))
  linears = as_torch_linears(g_vars["params"], 5)
  norms = [tuple(np.asarray(v, np.float64) for v in (
      g_vars["params"][f"BatchNorm_{i}"]["scale"], g_vars["params"][f"BatchNorm_{i}"]["bias"],
      g_vars["batch_stats"][f"BatchNorm_{i}"]["mean"],
      g_vars["batch_stats"][f"BatchNorm_{i}"]["var"])) for i in range(3)]
  z64 = z.astype(np.float64)
  want_train, want_norms = gan_py_generator(z64, linears, norms, train=True)
  np.testing.assert_allclose(train_img.reshape(16, 784), want_train, rtol=0, atol=2e-5)
  for i, (_, _, want_mean, want_var) in enumerate(want_norms):
    got = new_stats[f"BatchNorm_{i}"]
    np.testing.assert_allclose(got["mean"], want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["var"], want_var, rtol=1e-5)
  want_eval, _ = gan_py_generator(z64, linears, norms, train=False)
  np.testing.assert_allclose(eval_img.reshape(16, 784), want_eval, rtol=0, atol=2e-5)
  # D's logits are gan.py's Sigmoid input: the same validity.
  want_validity = gan_py_discriminator(train_img.astype(np.float64),
                                       as_torch_linears(d_vars["params"], 3))
  np.testing.assert_allclose(1 / (1 + np.exp(-logits.astype(np.float64))), want_validity,
                             rtol=1e-5)


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


def reference_tflib_layernorm(x_nhwc, offset, scale):
  """Gulrajani et al.'s tflib/ops/layernorm.py on NCHW data, norm_axes [1, 2, 3]:
  tf.nn.moments over (C, H, W) per example, per-channel offset and scale, eps 1e-5."""
  x = np.transpose(np.asarray(x_nhwc, np.float64), (0, 3, 1, 2))
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  var = x.var(axis=(1, 2, 3), keepdims=True)
  y = (x - mean) / np.sqrt(var + 1e-5) * scale.reshape(-1, 1, 1) + offset.reshape(-1, 1, 1)
  return np.transpose(y, (0, 2, 3, 1))


def test_wgan_gp_layer_norm_normalises_each_example_over_h_w_c():
  d = dcgan.DCGANDiscriminator(width=4, d_norm="layer")
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 28, 28, 1)) * 2 + 1
  # Jitted: op by op, init and apply compile ~90 small programs (most of the test's time).
  variables = jax.jit(d.init)(jax.random.PRNGKey(1), x)
  apply = jax.jit(lambda v, x: d.apply(v, x, capture_intermediates=True,
                                       mutable=["intermediates"]))
  norm = variables["params"]["LayerNorm_0"]
  assert norm["scale"].shape == (8,) and norm["bias"].shape == (8,)
  rng = np.random.default_rng(0)
  offset = rng.normal(size=8).astype(np.float32)
  scale = rng.normal(size=8).astype(np.float32)
  variables = jax.tree_util.tree_map(lambda a: a, variables)
  variables["params"]["LayerNorm_0"] = {"scale": jnp.asarray(scale), "bias": jnp.asarray(offset)}
  _, inter = apply(variables, x)
  conv = np.asarray(inter["intermediates"]["Conv_1"]["__call__"][0])
  got = np.asarray(inter["intermediates"]["LayerNorm_0"]["__call__"][0])
  np.testing.assert_allclose(got, reference_tflib_layernorm(conv, offset, scale),
                             rtol=1e-4, atol=1e-4)
  # One example's output does not depend on the others in its batch.
  _, alone = apply(variables, x[:1])
  np.testing.assert_allclose(np.asarray(alone["intermediates"]["LayerNorm_0"]["__call__"][0]),
                             got[:1], rtol=1e-5, atol=1e-5)


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


# ------------------------------------------------------------- the paper's model
def test_the_papers_g_starts_from_the_datas_pixel_marginals():
  # pylearn2's init_sigmoid_bias_from_marginals: bias = logit(clip(mean, 1e-7, 1-1e-7)).
  images = np.zeros((4, 8, 8, 1), np.uint8)
  images[:2, :4] = 255       # Top half: mean 0.5.
  images[:, 0, 0] = 255      # Pixel (0, 0): always on (clipped to 1 - 1e-7).
  images[1, 7, 7] = 51       # Pixel (7, 7): mean 0.05.
  config = toolkit.tiny_config(model="paper_mlp")
  gan = make_gan(config, (8, 8, 1))
  assert gan.needs_data
  state = run_once(gan.init, jax.random.PRNGKey(0), images)
  bias = np.asarray(state.g.params["Dense_2"]["bias"]).reshape(8, 8)
  mean = np.clip((images[..., 0].mean(axis=0) / 255.0).astype(np.float32),
                 np.float32(1e-7), np.float32(1 - 1e-7)).astype(np.float64)
  np.testing.assert_allclose(bias, np.log(mean / (1 - mean)), rtol=1e-4, atol=1e-4)
  assert bias[7, 7] == pytest.approx(np.log(0.05 / 0.95), rel=1e-4)
  assert bias[1, 3] == pytest.approx(0.0, abs=1e-6) and bias[6, 3] < -15
  # Without data (restoring a checkpoint needs only the shapes) the bias is zero.
  np.testing.assert_array_equal(run_once(gan.init, jax.random.PRNGKey(0)).g.params[
      "Dense_2"]["bias"], 0.0)
