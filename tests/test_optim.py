"""The optimizers (jaxgan/optim.py) against the update rules of the codes they stand for."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxgan.config import Config
from jaxgan.optim import make_optimizer


def test_rmsprop_is_torchs_with_eps_outside_the_square_root():
  # torch.optim.RMSprop (alpha 0.99, eps 1e-8; the WGAN authors' optimizer):
  #   v <- alpha v + (1 - alpha) g^2;  p <- p - lr g / (sqrt(v) + eps)
  lr = 5e-5
  tx = make_optimizer(Config(optimizer="rmsprop"), lr)
  p = {"w": jnp.array([1.0, -2.0, 3.0, 0.5])}
  g1 = np.array([1e-6, 0.5, -2.0, 0.0], np.float32)  # 1e-6: where eps placement shows.
  g2 = np.array([3e-6, -0.25, 1.0, 1e-3], np.float32)
  state = tx.init(p)
  v = np.zeros(4)
  want = np.asarray(p["w"], np.float64)
  for g in (g1, g2):
    updates, state = tx.update({"w": jnp.asarray(g)}, state, p)
    p = {"w": p["w"] + updates["w"]}
    v = 0.99 * v + 0.01 * g.astype(np.float64) ** 2
    want = want - lr * g / (np.sqrt(v) + 1e-8)
  np.testing.assert_allclose(np.asarray(p["w"]), want, rtol=1e-6)
  # With eps inside the square root (optax's default) the first step on g = 1e-6
  # would be lr * 1e-6 / sqrt(1e-14 + 1e-8) ~ 1e-2 lr instead of ~10 lr.
  first = -lr * 1e-6 / (np.sqrt(0.01 * 1e-12) + 1e-8)
  assert abs(first) > 9 * lr


def test_adam_for_unrolling_adds_a_tiny_eps_root():
  p = {"w": jnp.array([0.3])}
  plain, differentiable = (make_optimizer(Config(), 1e-3, differentiable=d)
                           for d in (False, True))
  for tx in (plain, differentiable):
    u, _ = tx.update({"w": jnp.array([0.7])}, tx.init(p), p)
    np.testing.assert_allclose(np.asarray(u["w"]), -1e-3, rtol=1e-6)
  assert float(differentiable.init(p).hyperparams["eps_root"]) == np.float32(1e-16)
