"""DCGAN's stride-2 layers written as stride-1 convolutions (models/dcgan.py) compute
flax's nn.ConvTranspose / nn.Conv: same parameters (names, shapes, kernel layout, so
checkpoints keep their meaning), outputs and gradients equal within 1e-5 (of the
largest value, or absolute where values are below 1), at the layer
shapes of 28 px (7 -> 14 -> 28) and 32 px (4 -> 8 -> 16 -> 32) images, tiny channels."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models.dcgan import (IMPLS, DCGANDiscriminator, DCGANGenerator,
                                 SpaceToDepthConv, SubpixelConvTranspose)
from jaxgan.runtime.compile import compile_once

# (input side, in channels, out channels): G's transposed convolutions double the side,
# D's convolutions halve it.
UP = [(7, 3, 2), (14, 2, 1), (4, 3, 2), (8, 2, 3), (16, 2, 1)]
DOWN = [(28, 1, 2), (14, 2, 3), (32, 3, 2), (16, 2, 2), (8, 2, 3)]
TOL = 1e-5


def _layers(impl):
  """[(reference, new, input shape)] for every layer shape, in one list."""
  out = []
  for n, ci, co in UP:
    out.append((nn.ConvTranspose(co, (4, 4), strides=(2, 2), padding="SAME"),
                SubpixelConvTranspose(co, impl=impl), (2, n, n, ci)))
  for n, ci, co in DOWN:
    out.append((nn.Conv(co, (4, 4), strides=(2, 2), padding="SAME"),
                SpaceToDepthConv(co, impl=impl), (2, n, n, ci)))
  return out


def _values_and_grads(module, params, x, r):
  """Output, and the gradients of <output, r> for the parameters and the input."""
  def f(p, x):
    return jnp.vdot(module.apply(p, x), r)
  return module.apply(params, x), jax.grad(f, argnums=(0, 1))(params, x)


@pytest.mark.parametrize("impl", [i for i in IMPLS if i != "xla"])
def test_layers_equal_flax(impl):
  layers = _layers(impl)
  rng = np.random.default_rng(0)  # NumPy draws: eager jax draws would compile per shape.
  inputs = []
  for ref, new, shape in layers:
    x = rng.normal(size=shape).astype(np.float32)
    shapes = jax.eval_shape(ref.init, jax.random.PRNGKey(0), x)
    assert jax.tree.map(jnp.shape, jax.eval_shape(new.init, jax.random.PRNGKey(0), x)) \
        == jax.tree.map(jnp.shape, shapes)
    # Kernel and bias at 5x DCGAN's init scale (flax would initialise the bias to 0).
    params = jax.tree.map(lambda a: 0.1 * rng.normal(size=a.shape).astype(np.float32),
                          shapes)
    r = rng.normal(size=jax.eval_shape(ref.apply, params, x).shape).astype(np.float32)
    inputs.append((params, x, r))

  @jax.jit  # One program for every layer, so the test compiles once.
  def both(inputs):
    return [(_values_and_grads(ref, *a), _values_and_grads(new, *a))
            for (ref, new, _), a in zip(layers, inputs)]

  for (ref, _, shape), (want, got) in zip(layers, both(inputs)):
    for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
      assert w.shape == g.shape
      # Within 1e-5 of the largest value (float32 sums in another order differ by ~1e-7).
      w, g = np.asarray(w), np.asarray(g)
      err = float(np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1.0))
      assert err <= TOL, (ref, shape, err)


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_models_keep_parameters_and_compute_the_same_images_and_logits(shape):
  """Every impl builds the parameter tree of the flax layers (impl='xla'), so a checkpoint
  written with one restores into another, and computes the same images and logits from it."""
  z = np.random.default_rng(0).normal(size=(4, 100)).astype(np.float32)
  gs = {impl: DCGANGenerator(shape, width=4, impl=impl) for impl in IMPLS}
  ds = {impl: DCGANDiscriminator(width=4, d_norm="batch", impl=impl) for impl in IMPLS}
  trees = {}
  for impl in IMPLS:
    gv = jax.eval_shape(lambda g=gs[impl]: g.init(jax.random.PRNGKey(0), z))
    dv = jax.eval_shape(lambda d=ds[impl]: d.init(jax.random.PRNGKey(0),
                                                  jnp.ones((2,) + shape)))
    trees[impl] = (gv, dv)
  shapes = jax.tree.map(jnp.shape, trees)
  assert all(t == shapes["xla"] for t in shapes.values()), shapes
  # One set of variables (BatchNorm's running variances positive), as a checkpoint
  # would hold them, through every impl, in eval mode (running statistics).
  rng = np.random.default_rng(1)

  def value(path, leaf):
    if "var" in jax.tree_util.keystr(path):
      return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
    return (0.1 * rng.normal(size=leaf.shape)).astype(np.float32)

  gv, dv = jax.tree_util.tree_map_with_path(value, trees["xla"])

  x = rng.normal(size=(4,) + shape).astype(np.float32)

  def outputs(gv, dv, z, x):
    return {impl: (gs[impl].apply(gv, z, train=False), ds[impl].apply(dv, x, train=False))
            for impl in IMPLS}

  # One program for every impl, compiled once (compile_once: a fraction of jit's time).
  got = jax.device_get(compile_once(outputs, gv, dv, z, x)(gv, dv, z, x))
  want_images, want_logits = (np.asarray(a) for a in got["xla"])
  assert np.abs(want_images).max() > 0.1 and np.ptp(want_logits) > 1e-3  # Not flat.
  for impl in IMPLS:
    images, logits = got[impl]
    np.testing.assert_allclose(images, want_images, rtol=0, atol=TOL)
    np.testing.assert_allclose(logits, want_logits, rtol=0,
                               atol=TOL * max(np.abs(want_logits).max(), 1.0))
