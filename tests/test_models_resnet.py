"""SNGAN's residual G and D (jaxgan.models.resnet, --model=resnet) against mimicry's
SNGAN 32 (torch_mimicry/nets/sngan/sngan_32.py, modules/resblocks.py) and the authors'
Chainer blocks (sngan_projection dis_models/resblocks.py, gen_models/resblocks.py):
the parameter shapes of every layer, each block's forward pass against a NumPy
transcription, and the flagfile's setting trained one step on tiny images. Shapes come
from jax.eval_shape (nothing compiles at full width); the blocks run at 2-3 channels."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags

from jaxgan import config as config_lib
from jaxgan import models
from jaxgan.models import resnet
from jaxgan.runtime.compile import compile_once
from jaxgan.state import make_gan
from jaxgan.steps import make_steps

import toolkit


# --------------------------------------------------------------------------- layers
def torch_shapes(layers: dict) -> dict:
  """{path: torch shape} -> {path: jaxgan shape}: Linear [out, in] -> kernel [in, out];
  Conv2d [O, I, kh, kw] -> HWIO; BatchNorm weight -> scale."""
  out = {}
  for path, shape in layers.items():
    path = path.replace(".", "/").replace("/weight", "/kernel")
    if len(shape) == 2:
      shape = shape[::-1]
    elif len(shape) == 4:
      shape = (shape[2], shape[3], shape[1], shape[0])
    elif path.split("/")[-2].startswith("b"):  # BatchNorm2d weight (1-d).
      path = path.replace("/kernel", "/scale")
    out[path] = tuple(shape)
  return out


def mimicry_g(side_blocks: int, bottom: int, channels: int, nz=128, ngf=256) -> dict:
  """SNGANGenerator32's parameters (torch shapes); 28 px: bottom 7, two blocks."""
  layers = {"l1.weight": (bottom ** 2 * ngf, nz), "l1.bias": (bottom ** 2 * ngf,)}
  for i in range(2, 2 + side_blocks):  # GBlock(ngf, ngf, upsample=True)
    layers.update({f"block{i}.c1.weight": (ngf, ngf, 3, 3), f"block{i}.c1.bias": (ngf,),
                   f"block{i}.c2.weight": (ngf, ngf, 3, 3), f"block{i}.c2.bias": (ngf,),
                   f"block{i}.b1.weight": (ngf,), f"block{i}.b1.bias": (ngf,),
                   f"block{i}.b2.weight": (ngf,), f"block{i}.b2.bias": (ngf,),
                   f"block{i}.c_sc.weight": (ngf, ngf, 1, 1), f"block{i}.c_sc.bias": (ngf,)})
  layers.update({"b5.weight": (ngf,), "b5.bias": (ngf,),
                 "c5.weight": (channels, ngf, 3, 3), "c5.bias": (channels,)})
  return torch_shapes(layers)


def mimicry_d(channels: int, ndf=128) -> dict:
  """SNGANDiscriminator32's parameters: DBlockOptimized, DBlock(down), 2 x DBlock, l5."""
  layers = {"block1.c1.weight": (ndf, channels, 3, 3), "block1.c1.bias": (ndf,),
            "block1.c2.weight": (ndf, ndf, 3, 3), "block1.c2.bias": (ndf,),
            "block1.c_sc.weight": (ndf, channels, 1, 1), "block1.c_sc.bias": (ndf,),
            "block2.c_sc.weight": (ndf, ndf, 1, 1), "block2.c_sc.bias": (ndf,),
            "l5.weight": (1, ndf), "l5.bias": (1,)}
  for i in (2, 3, 4):  # Blocks 3 and 4 keep the width and size: no learnable shortcut.
    layers.update({f"block{i}.c1.weight": (ndf, ndf, 3, 3), f"block{i}.c1.bias": (ndf,),
                   f"block{i}.c2.weight": (ndf, ndf, 3, 3), f"block{i}.c2.bias": (ndf,)})
  return torch_shapes(layers)


def paths_and_values(tree) -> dict:
  return {"/".join(str(k.key) for k in path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def paths(tree) -> dict:
  return {"/".join(str(k.key) for k in path): tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.mark.parametrize("shape, blocks, bottom", [((32, 32, 3), 3, 4), ((28, 28, 1), 2, 7)])
def test_every_layer_has_mimicrys_shape_and_the_outputs_the_images(shape, blocks, bottom):
  spec = models.MODELS["resnet"]
  g = spec.generator(shape)
  d = spec.discriminator(shape, models.ModelOptions(d_norm="spectral"))
  z, x = jnp.zeros((2, 128)), jnp.zeros((2,) + shape)

  def init_and_apply(key):
    g_vars, d_vars = g.init(key, z, train=False), d.init(key, x, train=False)
    images, _ = g.apply(g_vars, z, train=True, mutable=["batch_stats"])
    logits, _ = d.apply(d_vars, images, train=True, mutable=["batch_stats"])
    return g_vars, d_vars, images, logits
  g_vars, d_vars, images, logits = jax.eval_shape(init_and_apply, jax.random.PRNGKey(0))
  assert images.shape == (2,) + shape and logits.shape == (2,)
  assert paths(g_vars["params"]) == mimicry_g(blocks, bottom, shape[-1])
  assert paths(d_vars["params"]) == mimicry_d(shape[-1])
  # BatchNorm statistics in G only; D: spectral normalization of each conv and l5.
  assert set(paths(g_vars["batch_stats"])) == {
      p.replace("scale", s) for p in paths(g_vars["params"]) if p.endswith("scale")
      for s in ("mean", "var")}
  assert set(paths(d_vars["batch_stats"])) == {
      p.replace("/kernel", f"_spectral/{s}") for p in paths(d_vars["params"])
      if p.endswith("kernel") for s in "uv"}


def test_shapes_the_resnet_cannot_train_on_are_refused_naming_why():
  check = models.MODELS["resnet"].check_shape
  assert check((28, 28, 1)) is None and check((32, 32, 3)) is None
  assert check((8, 8, 1)) is None
  assert "square" in check((32, 28, 3))
  assert "divisible by 4" in check((30, 30, 3)) and "divisible by 4" in check((4, 4, 1))


# --------------------------------------------------------------------------- blocks
# NumPy transcriptions (NHWC, float64) of the torch / Chainer operations.
def conv(x, layer):
  kernel, bias = (np.asarray(layer[n], np.float64) for n in ("kernel", "bias"))
  k = kernel.shape[0]
  p = k // 2
  xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  h, w = x.shape[1:3]
  return sum(xp[:, dy:dy + h, dx:dx + w] @ kernel[dy, dx]
             for dy in range(k) for dx in range(k)) + bias


def relu(x):
  return np.maximum(x, 0.0)


def avg_pool(x):
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def batch_norm(x, layer):  # Training mode: the batch's biased variance, eps 1e-5.
  mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  return (x - mean) / np.sqrt(var + 1e-5) * np.asarray(layer["scale"]) + np.asarray(
      layer["bias"])


def torch_bilinear_x2(x):
  """aten upsample_bilinear2d, align_corners=False, scale 2: source index
  max((dst + 0.5) / 2 - 0.5, 0), its floor and the next (clamped), linear weights."""
  for axis in (1, 2):
    n = x.shape[axis]
    src = np.maximum((np.arange(2 * n) + 0.5) / 2 - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = (src - i0).reshape([-1 if a == axis else 1 for a in range(4)])
    x = (1 - lam) * np.take(x, i0, axis=axis) + lam * np.take(x, i1, axis=axis)
  return x


def test_upsampling_is_torchs_bilinear_and_chainers_nearest():
  x = np.random.default_rng(0).normal(size=(2, 3, 5, 2))
  bilinear, nearest = jax.jit(lambda x: [resnet.upsample(x, m) for m in resnet.UPSAMPLES])(
      jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(bilinear, torch_bilinear_x2(x), rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(nearest,
                                np.repeat(np.repeat(x, 2, 1), 2, 2).astype(np.float32))


def g_block(x, p, up):
  """mimicry GBlock: BN, ReLU, up, c1, BN, ReLU, c2 + c_sc(up(x))."""
  h = conv(up(relu(batch_norm(x, p["b1"]))), p["c1"])
  h = conv(relu(batch_norm(h, p["b2"])), p["c2"])
  return h + conv(up(x), p["c_sc"])


def d_block(x, p, downsample):
  """The authors' Block: ReLU, c1, ReLU, c2 [pool] + c_sc(x) [pool] (or x)."""
  h = conv(relu(conv(relu(x), p["c1"])), p["c2"])
  shortcut = conv(x, p["c_sc"]) if "c_sc" in p else x
  return avg_pool(h) + avg_pool(shortcut) if downsample else h + shortcut


def d_block_optimized(x, p):
  """OptimizedBlock: c1, ReLU, c2, pool + c_sc(pool(x))."""
  return avg_pool(conv(relu(conv(x, p["c1"])), p["c2"])) + conv(avg_pool(x), p["c_sc"])


def generator(z, p, up):
  """SNGANGenerator32.forward: l1, view [B, C, base, base], GBlocks, BN, ReLU, c5, tanh."""
  h = z @ np.asarray(p["l1"]["kernel"]) + np.asarray(p["l1"]["bias"])
  base = int(round((h.shape[1] / WIDTH) ** 0.5))
  h = h.reshape(len(z), WIDTH, base, base).transpose(0, 2, 3, 1)  # torch's view, NHWC.
  for name in sorted(k for k in p if k.startswith("block")):
    h = g_block(h, p[name], up)
  return np.tanh(conv(relu(batch_norm(h, p["b5"])), p["c5"]))


def discriminator(x, p):
  """SNGANDiscriminator32.forward: blocks 1-4, ReLU, global sum pooling, l5."""
  h = d_block_optimized(x, p["block1"])
  h = d_block(h, p["block2"], downsample=True)
  h = d_block(d_block(h, p["block3"], False), p["block4"], False)
  h = relu(h).sum(axis=(1, 2))
  return (h @ np.asarray(p["l5"]["kernel"]) + np.asarray(p["l5"]["bias"]))[:, 0]


WIDTH = 3
SHAPE = (8, 8, 2)  # G: 4x4 -> one up-block; D: 8 -> 4 -> 2 -> 2 -> 2.


def test_g_and_d_compute_the_reference_forward_passes():
  # G (bilinear upsampling: resnet.upsample is checked for both modes above) and D
  # (without spectral normalization, checked on its own) hold every kind of block.
  # Inputs of both signs: a block's input is a sum, and where each ReLU sits must show.
  nets = {"g": (resnet.ResNetGenerator(SHAPE, width=WIDTH), (2, 5)),
          "d": (resnet.ResNetDiscriminator(width=WIDTH, spectral_norm=False), (2,) + SHAPE)}
  rng = np.random.default_rng(2)
  inputs = {name: rng.normal(size=shape) for name, (_, shape) in nets.items()}

  def init_and_apply(key, inputs):  # Every net's training forward: one program.
    out = {}
    for name, (net, _) in nets.items():
      variables = net.init(key, inputs[name], train=False)
      y, _ = net.apply(variables, inputs[name], train=True, mutable=["batch_stats"])
      out[name] = (y, variables["params"])
    return out
  as32 = {k: jnp.asarray(v, jnp.float32) for k, v in inputs.items()}
  out = compile_once(init_and_apply, jax.random.PRNGKey(1), as32)(
      jax.random.PRNGKey(1), as32)
  params = {name: jax.tree_util.tree_map(np.asarray, p) for name, (_, p) in out.items()}
  want = {"g": generator(inputs["g"], params["g"], torch_bilinear_x2),
          "d": discriminator(inputs["d"], params["d"])}
  for name, (y, _) in out.items():
    assert y.shape == want[name].shape, name
    np.testing.assert_allclose(y, want[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_initialisation_is_mimicrys_xavier_uniform_with_torchs_default_biases():
  # A 3x3 conv of 64 -> 64: xavier bound gain·√(6 / (2·576)), bias bound 1/√576.
  layer = resnet.Conv(64, 3, np.sqrt(2.0))
  key, x = jax.random.PRNGKey(3), jnp.zeros((1, 3, 3, 64))
  p = compile_once(layer.init, key, x)(key, x)["params"]
  kernel, bias = np.asarray(p["kernel"]), np.asarray(p["bias"])
  bound = np.sqrt(2.0) * np.sqrt(6.0 / (2 * 576))
  assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.99 * bound
  assert np.std(kernel) == pytest.approx(bound / np.sqrt(3), rel=0.02)
  assert np.abs(bias).max() <= 1 / 24 and np.abs(bias).max() > 0.9 / 24


# --------------------------------------------------------------------------- training
def flagfile_config(**overrides):
  fv = flags.FlagValues()
  config_lib.define_flags(fv)
  argv = ["prog", "--flagfile=experiments/fashion_mnist_resnet.flags",
          *(f"--{k}={v}" for k, v in overrides.items())]
  cwd = os.getcwd()
  os.chdir(toolkit.REPO)  # The flagfile path is relative to the repository.
  try:
    fv(argv)
  finally:
    os.chdir(cwd)
  return config_lib.from_flags(fv, argv).validate()


def torch_power_iteration(weight_mat, u):
  """One training forward of torch's spectral_norm: (u, v), weight_mat [out, in]."""
  def normalize(x):
    return x / max(np.linalg.norm(x), 1e-12)
  v = normalize(weight_mat.T @ u)
  return normalize(weight_mat @ v), v


def test_the_flagfile_trains_finite_and_u_advances_twice_per_d_update_none_in_gs_step():
  config = flagfile_config()
  assert (config.model, config.d_norm, config.loss, config.num_d_steps, config.optimizer,
          config.lr_g, config.lr_d, config.b1, config.b2, config.batch_size,
          config.latent_dim, config.num_steps) == (
              "resnet", "spectral", "hinge", 5, "adam", 2e-4, 2e-4, 0.0, 0.9, 64, 128,
              100_000)
  # A tiny override: 8x8 images, batch 4, one D update per step (the flagfile's five
  # repeat the same update), narrow layers.
  config = flagfile_config(batch_size=4, num_d_steps=1, latent_dim=8, num_steps=2)
  images = np.random.default_rng(4).integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
  gan = make_gan(config, images.shape[1:])
  gan = gan._replace(generator=gan.generator.clone(width=4),
                     discriminator=gan.discriminator.clone(width=3))
  steps = make_steps(config, gan, len(images))
  state = compile_once(gan.init, jax.random.PRNGKey(5))(jax.random.PRNGKey(5))
  new, metrics = compile_once(steps.train_step, state, images)(state, images)
  for name in ("d_loss", "g_loss"):
    assert np.isfinite(float(metrics[name])), name
  assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(new))
  # D's real pass and fake pass each run one power iteration with D's weights before
  # its update, as torch's two training forwards do; G's pass runs one too, but the
  # step keeps none of D's state from it (torch would: a third iteration).
  before, after = (paths_and_values(s.d.batch_stats) for s in (state, new))
  kernels = paths_and_values(state.d.params)
  assert len(before) == 2 * 11  # u and v of 10 convolutions and the head.
  for path in (p.removesuffix("/u") for p in before if p.endswith("/u")):
    kernel = kernels[path.replace("_spectral", "/kernel")].astype(np.float64)
    u = before[f"{path}/u"].astype(np.float64)
    for _ in range(2):
      u, v = torch_power_iteration(kernel.reshape(-1, kernel.shape[-1]).T, u)
    np.testing.assert_allclose(after[f"{path}/u"], u, rtol=1e-4, atol=1e-6, err_msg=path)
    np.testing.assert_allclose(after[f"{path}/v"], v, rtol=1e-4, atol=1e-6, err_msg=path)
    for name in ("u", "v"):  # Moved (a vector of one element is ±1 throughout).
      assert after[f"{path}/{name}"].size == 1 or not np.array_equal(
          before[f"{path}/{name}"], after[f"{path}/{name}"]), (path, name)
