"""Spectral normalization (jaxgan.models.layers.SpectralNorm, --d_norm=spectral) against
a NumPy transcription of torch.nn.utils.spectral_norm (torch/nn/utils/spectral_norm.py):

  weight_mat = weight.reshape(out, -1)       (Conv OIHW -> [O, I·kh·kw])
  training forward: v = normalize(Wᵀu); u = normalize(Wv)   (no grad; u, v kept)
  σ = uᵀWv (differentiated in W);  the layer runs with W / σ
  evaluation forward: σ from the kept u and v, no iteration
  normalize(x) = x / max(‖x‖, 1e-12)

and which layers --d_norm=spectral wraps. Layers of a few units; what jaxgan's step does
with the state (two power iterations per D update, none kept from G's step) is checked
on the resnet's train step in test_models_resnet.py."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import models
from jaxgan.config import Config
from jaxgan.models.layers import SpectralNorm
from jaxgan.runtime.compile import compile_once

import toolkit


def normalize(x):
  return x / max(np.linalg.norm(x), 1e-12)


def torch_power_iteration(weight_mat, u):
  """One training forward of torch's spectral_norm: (u, v, σ), weight_mat [out, in]."""
  v = normalize(weight_mat.T @ u)
  u = normalize(weight_mat @ v)
  return u, v, u @ weight_mat @ v


class Net(nn.Module):
  """One spectrally normalised layer, called as a D calls it."""

  layer: nn.Module

  @nn.compact
  def __call__(self, x, train):
    return SpectralNorm(self.layer, name="sn")(x, update_stats=train)


def forward(net, params, stats, x, train):
  return net.apply({"params": params, "batch_stats": stats}, x, train=train,
                   mutable=["batch_stats"])


def compiled(net, x):
  """(variables, training forward, evaluation forward), each a one-shot program."""
  key = jax.random.PRNGKey(1)
  variables = compile_once(lambda key, x: net.init(key, x, train=False), key, x)(key, x)
  params, stats = variables["params"], variables["batch_stats"]
  train, evaluate = (compile_once(functools.partial(forward, net, train=train), params,
                                  stats, x) for train in (True, False))
  return variables, train, evaluate


def torch_conv_same(x, kernel):
  """nn.Conv's SAME convolution (3x3, stride 1) in NumPy: NHWC x, HWIO kernel."""
  k = kernel.shape[0]
  xp = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  h, w = x.shape[1:3]
  return sum(xp[:, dy:dy + h, dx:dx + w] @ kernel[dy, dx]
             for dy in range(k) for dx in range(k))


# layer, its input, torch's weight matrix [out, in] of the kernel, torch's v from
# jaxgan's, the layer in NumPy. Dense: kernel [in, out], torch weight = kernel.T. Conv:
# kernel HWIO, torch's OIHW is kernel.transpose(3, 2, 0, 1); torch's v runs over
# (I, kh, kw), jaxgan's over (kh, kw, I).
LAYERS = {
    "dense": (nn.Dense(5), np.eye(7), lambda k: k.T, lambda v, k: v,
              lambda x, k: x @ k),
    "conv": (nn.Conv(4, (3, 3)), np.random.default_rng(1).normal(size=(2, 5, 5, 3)),
             lambda k: k.transpose(3, 2, 0, 1).reshape(k.shape[3], -1),
             lambda v, k: v.reshape(k.shape[:3]).transpose(2, 0, 1).ravel(),
             torch_conv_same),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_u_v_and_the_output_follow_torchs_spectral_norm_from_the_same_start(name):
  layer, x, torch_matrix, torch_v, numpy_layer = LAYERS[name]
  rng = np.random.default_rng(0)
  x32 = jnp.asarray(x, jnp.float32)
  variables, train, evaluate = compiled(Net(layer), x32)
  params, stats = variables["params"], variables["batch_stats"]
  bias = np.asarray(params["layer"]["bias"], np.float64)
  u = np.asarray(stats["sn"]["u"], np.float64)  # The same start for both.
  np.testing.assert_allclose(np.linalg.norm(u), 1.0, rtol=1e-6)

  def train_forward(kernel):
    y, mutated = train({"layer": {**params["layer"], "kernel": kernel}}, stats, x32)
    return np.asarray(y, np.float64), mutated["batch_stats"]

  # Training steps: the weight changes between forwards; both see the same weights.
  kernel = np.asarray(params["layer"]["kernel"], np.float64)
  for step in range(4):
    kernel = (kernel + 0.3 * rng.normal(size=kernel.shape)).astype(np.float32)
    y, stats = train_forward(kernel)
    u, v, sigma = torch_power_iteration(torch_matrix(kernel.astype(np.float64)), u)
    np.testing.assert_allclose(stats["sn"]["u"], u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(torch_v(np.asarray(stats["sn"]["v"]), kernel), v,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, numpy_layer(x, kernel / sigma) + bias, rtol=1e-5,
                               atol=1e-5)

  # Evaluation: no iteration, u and v as kept, σ = uᵀWv from them.
  y, evaluated = evaluate({"layer": {**params["layer"], "kernel": kernel}}, stats, x32)
  toolkit.assert_trees_equal(evaluated["batch_stats"], stats)
  np.testing.assert_allclose(y, numpy_layer(x, kernel / sigma) + bias, rtol=1e-5,
                             atol=1e-5)

  # Enough iterations on one weight: σ is its largest singular value, so the normalised
  # weight's is 1.
  for _ in range(60):
    y, stats = train_forward(kernel)
  u, v = (np.asarray(stats["sn"][n], np.float64) for n in "uv")
  matrix = torch_matrix(kernel.astype(np.float64))
  sigma = u @ matrix @ torch_v(v, kernel)
  top = np.linalg.svd(matrix / sigma, compute_uv=False)[0]
  assert top == pytest.approx(1.0, abs=1e-4)
  np.testing.assert_allclose(y, numpy_layer(x, kernel / sigma) + bias, rtol=1e-4,
                             atol=1e-5)


def test_the_gradient_flows_through_sigma_in_the_weight_only():
  # L = Σ G∘y, y = x K/σ, σ = vᵀKu with u, v constants (torch: computed under no_grad):
  # dL/dK = A/σ - (Σ A∘K / σ²) v uᵀ, A = xᵀG.
  net = Net(nn.Dense(3, use_bias=False))
  rng = np.random.default_rng(5)
  x = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)
  g = rng.normal(size=(4, 3))

  def gradient(key, x):
    variables = net.init(key, x, train=False)

    def loss(params):
      y, mutated = forward(net, params, variables["batch_stats"], x, True)
      return jnp.sum(y * g), mutated["batch_stats"]
    return variables, jax.grad(loss, has_aux=True)(variables["params"])
  key = jax.random.PRNGKey(6)
  variables, (grads, stats) = compile_once(gradient, key, x)(key, x)
  kernel = np.asarray(variables["params"]["layer"]["kernel"], np.float64)
  u, v = (np.asarray(stats["sn"][n], np.float64) for n in "uv")
  sigma = v @ kernel @ u
  a = np.asarray(x, np.float64).T @ g
  want = a / sigma - np.sum(a * kernel) / sigma ** 2 * np.outer(v, u)
  np.testing.assert_allclose(grads["layer"]["kernel"], want, rtol=1e-4, atol=1e-6)


def state_paths(tree):
  return {"/".join(str(k.key) for k in path): leaf.shape
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.mark.parametrize("model, shape", [
    ("mlp", (8, 8, 1)), ("dcgan", (8, 8, 1)), ("toy_mlp", (1, 1, 2)),
    ("pacgan_mlp", (1, 1, 4)), ("resnet", (8, 8, 1))])
def test_d_norm_spectral_wraps_every_dense_and_conv_of_d_the_head_too(model, shape):
  options = models.ModelOptions(minibatch_kernels=2, d_norm="spectral")
  d = models.MODELS[model].discriminator(shape, options)
  if model == "resnet":
    d = d.clone(width=4)
  def shapes(d):
    return jax.eval_shape(lambda key, x: d.init(key, x, train=False),
                          jax.random.PRNGKey(0), jnp.zeros((3,) + shape))
  variables = shapes(d)
  kernels = {p.removesuffix("/kernel"): s for p, s in state_paths(
      variables["params"]).items() if p.endswith("/kernel")}
  normalised = {p.removesuffix("_spectral/u"): s for p, s in state_paths(
      variables["batch_stats"]).items() if p.endswith("_spectral/u")}
  assert len(kernels) >= 2 and set(kernels) == set(normalised), (kernels, normalised)
  for layer, kernel_shape in kernels.items():
    assert normalised[layer] == (kernel_shape[-1],), layer  # u: the output axis.
  # Minibatch discrimination (weight-normalised already) is the one layer left alone.
  assert any("minibatch_disc" in p for p in state_paths(variables["params"]))
  plain = models.MODELS[model].discriminator(shape, options._replace(
      d_norm="none" if model == "resnet" else "batch"))
  assert "batch_stats" not in shapes(plain)


@pytest.mark.parametrize("model, shape", [
    ("mlp", (8, 8, 1)), ("dcgan", (8, 8, 1)), ("resnet", (8, 8, 1))])
def test_spectral_norm_stores_the_weights_as_the_layer_initialised_them(model, shape):
  """The initial kernels are the layer's own initialisation, as torch's weight_orig, not
  kernel / σ from the random u and v: that σ scaled the mlp D's kernels by 13-96x, and
  Adam's steps, which do not scale with a weight, then moved W/σ that much more slowly
  (D stayed at chance for 1,000 steps where torch's reaches D(x) 0.8 in 50)."""
  options = models.ModelOptions(d_norm="spectral")
  plain_norm = "none" if model == "resnet" else "batch"
  nets = [models.MODELS[model].discriminator(shape, options._replace(d_norm=norm))
          for norm in ("spectral", plain_norm)]
  if model == "resnet":
    nets = [d.clone(width=8) for d in nets]
  x = jnp.zeros((2,) + shape)
  spectral, plain = (jax.jit(lambda key, d=d: d.init(key, x, train=False))(
      jax.random.PRNGKey(3))["params"] for d in nets)
  kernels = {path: leaf for path, leaf in jax.tree_util.tree_flatten_with_path(
      spectral)[0] if path[-1].key == "kernel"}
  plain_kernels = {path: leaf for path, leaf in jax.tree_util.tree_flatten_with_path(
      plain)[0] if path[-1].key == "kernel"}
  assert kernels and set(kernels) <= set(plain_kernels)
  for path, kernel in kernels.items():
    # The same initialiser with another draw: the same bound and spread.
    want = np.asarray(plain_kernels[path])
    assert np.abs(kernel).max() <= np.abs(want).max() * 1.05 + 1e-6, path
    if want.size >= 64:
      assert 0.8 < np.std(kernel) / np.std(want) < 1.25, (path, np.std(kernel), np.std(want))


def test_config_refuses_spectral_where_d_does_not_take_it_and_resnet_without_it():
  from jaxgan.errors import ConfigError
  Config(model="mlp", d_norm="spectral", num_steps=1).validate()
  with pytest.raises(ConfigError, match=r"^--d_norm='spectral' is invalid: .*paper_mlp"):
    Config(model="paper_mlp", d_norm="spectral", num_steps=1).validate()
  with pytest.raises(ConfigError, match=r"^--d_norm='batch' is invalid: .*'spectral'.*resnet"):
    Config(model="resnet", num_steps=1).validate()
