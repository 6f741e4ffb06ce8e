"""Each loss on hand-computed logits; clipping; the gradient penalty against autodiff
and against a hand computation (jaxgan/losses.py)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import losses
from jaxgan.losses import LossHParams


def sigmoid(x):
  return 1.0 / (1.0 + math.exp(-x))


HAND_REAL = [0.0, 2.0]
HAND_FAKE = [0.0, -1.0]


def test_bce_d_loss_is_half_the_sum_of_real_and_fake_cross_entropies():
  expected = 0.5 * (-(math.log(sigmoid(0.0)) + math.log(sigmoid(2.0))) / 2
                    - (math.log(1 - sigmoid(0.0)) + math.log(1 - sigmoid(-1.0))) / 2)
  got = losses.bce_d_loss(jnp.array(HAND_REAL), jnp.array(HAND_FAKE))
  assert float(got) == pytest.approx(expected, rel=1e-6)
  assert float(got) == pytest.approx(0.4566210, rel=1e-6)


def test_minimax_g_loss_is_mean_log_one_minus_d():
  expected = (math.log(1 - sigmoid(0.0)) + math.log(1 - sigmoid(-1.0))) / 2
  got = losses.minimax_g_loss(jnp.array(HAND_FAKE))
  assert float(got) == pytest.approx(expected, rel=1e-6)
  assert float(got) == pytest.approx(-0.5032045, rel=1e-6)


def test_non_saturating_g_loss_is_minus_mean_log_d():
  expected = -(math.log(sigmoid(0.0)) + math.log(sigmoid(-1.0))) / 2
  got = losses.non_saturating_g_loss(jnp.array(HAND_FAKE))
  assert float(got) == pytest.approx(expected, rel=1e-6)
  assert float(got) == pytest.approx(1.0032045, rel=1e-6)


def test_losses_are_finite_for_extreme_logits():
  extreme = jnp.array([-200.0, 200.0])
  for loss in losses.LOSSES.values():
    assert np.isfinite(float(loss.d_loss(extreme, extreme)))
    assert np.isfinite(float(loss.g_loss(extreme)))


def test_non_saturating_gradient_is_strong_where_minimax_saturates():
  # Early in training D rejects fakes confidently (logit -10): the minimax G gradient
  # vanishes, the non-saturating one does not (the paper's motivation, section 3).
  g_mm = jax.grad(lambda l: losses.minimax_g_loss(l))(jnp.array([-10.0]))
  g_ns = jax.grad(lambda l: losses.non_saturating_g_loss(l))(jnp.array([-10.0]))
  assert abs(float(g_mm[0])) < 1e-4
  assert abs(float(g_ns[0])) > 0.99


def softplus(x: float) -> float:
  return math.log1p(math.exp(x))


REAL = jnp.array([1.0, 3.0])
FAKE = jnp.array([0.0, 2.0])


def test_bce_d_loss_at_zero_logits_is_log2():
  assert float(losses.bce_d_loss(jnp.zeros(3), jnp.zeros(3))) == pytest.approx(
      math.log(2))


def test_one_sided_label_smoothing_changes_only_the_real_target():
  s = 0.1
  real, fake = 2.0, -1.0
  expected = 0.5 * ((1 - s) * softplus(-real) + s * softplus(real) + softplus(fake))
  got = losses.bce_d_loss(jnp.array([real]), jnp.array([fake]),
                          LossHParams(label_smoothing=s))
  assert float(got) == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_accepts_a_traced_array():
  f = jax.jit(lambda s: losses.bce_d_loss(jnp.zeros(2), jnp.zeros(2),
                                          LossHParams(label_smoothing=s)))
  assert float(f(jnp.float32(0.3))) == pytest.approx(math.log(2), rel=1e-6)


def test_g_losses_on_known_logits():
  logits = jnp.array([0.5])
  assert float(losses.non_saturating_g_loss(logits)) == pytest.approx(softplus(-0.5),
                                                                      rel=1e-6)
  assert float(losses.minimax_g_loss(logits)) == pytest.approx(-softplus(0.5), rel=1e-6)


def test_lsgan_losses():
  # ½·mean((1-1)², (3-1)²) + ½·mean(0², 2²) = 1 + 1.
  assert float(losses.lsgan_d_loss(REAL, FAKE)) == pytest.approx(2.0)
  # ½·mean((0-1)², (2-1)²).
  assert float(losses.lsgan_g_loss(FAKE)) == pytest.approx(0.5)


def test_wgan_losses():
  assert float(losses.wgan_d_loss(REAL, FAKE)) == pytest.approx(1.0 - 2.0)
  assert float(losses.wgan_g_loss(FAKE)) == pytest.approx(-1.0)


def test_hinge_losses():
  # real: max(0, 1-0.5)=0.5, max(0, 1+1)=2 -> 1.25; fake: max(0,1+0)=1, max(0,1+2)=3 -> 2.
  assert float(losses.hinge_d_loss(jnp.array([0.5, -1.0]), FAKE)) == pytest.approx(3.25)
  assert float(losses.hinge_d_loss(REAL, jnp.array([-2.0, -1.0]))) == pytest.approx(0.0)
  assert float(losses.hinge_g_loss(FAKE)) == pytest.approx(-1.0)


def test_clip_weights_bounds_every_leaf():
  params = {"a": jnp.array([-1.0, 0.005, 2.0]), "b": {"c": jnp.array(-0.02)}}
  clipped = losses.clip_weights(params, 0.01)
  np.testing.assert_allclose(clipped["a"], [-0.01, 0.005, 0.01])
  assert float(clipped["b"]["c"]) == pytest.approx(-0.01)


# One compiled program per critic (eager autodiff dispatches op by op).
penalty = jax.jit(losses.gradient_penalty, static_argnums=0)


def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared():
  w = jnp.array([3.0, 4.0])  # ‖∇f‖ = 5 everywhere -> (5 - 1)² = 16.
  real = jnp.ones((4, 2))
  fake = -jnp.ones((4, 2))
  gp = penalty(lambda x: x @ w, real, fake, jax.random.PRNGKey(0))
  assert float(gp) == pytest.approx(16.0, rel=1e-5)


def test_gradient_penalty_matches_per_example_autodiff_on_a_tiny_mlp():
  key = jax.random.PRNGKey(1)
  w1 = jax.random.normal(key, (3, 5))
  w2 = jax.random.normal(jax.random.fold_in(key, 1), (5,))

  def critic(x):  # [B, 3] -> [B], examples independent.
    return jnp.tanh(x @ w1) @ w2

  x = jax.random.normal(jax.random.fold_in(key, 2), (6, 3))
  # real == fake: every interpolate is x itself, whatever ε is drawn.
  gp = penalty(critic, x, x, jax.random.PRNGKey(3))
  per_example = jax.jit(jax.vmap(jax.grad(lambda xi: critic(xi[None])[0])))(x)
  expected = jnp.mean((jnp.linalg.norm(per_example, axis=1) - 1.0) ** 2)
  assert float(gp) == pytest.approx(float(expected), rel=1e-5)


def test_gradient_penalty_of_a_nonlinear_critic_between_real_and_fake_by_hand():
  # f(x) = sum_h tanh(x . w_h): per example, grad f(x) = w (1 - tanh(x w)^2)^T, so the
  # penalty at the interpolates x^ = eps x + (1 - eps) x~ is computable in NumPy.
  rng = np.random.default_rng(0)
  w = rng.normal(size=(3, 4))
  real, fake = rng.normal(size=(5, 3)), 2.0 + rng.normal(size=(5, 3))
  key = jax.random.PRNGKey(11)
  eps = np.asarray(jax.random.uniform(key, (5, 1)), np.float64)  # As the penalty draws.
  assert len(np.unique(eps)) == 5  # One eps per example.

  def critic(x):  # [B, 3] -> [B].
    return jnp.sum(jnp.tanh(x @ jnp.asarray(w, jnp.float32)), axis=-1)

  def by_hand(eps):
    x_hat = eps * real + (1.0 - eps) * fake
    grads = (1.0 - np.tanh(x_hat @ w) ** 2) @ w.T  # [B, 3]
    return np.mean((np.linalg.norm(grads, axis=1) - 1.0) ** 2)

  got = penalty(critic, jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32),
                key)
  np.testing.assert_allclose(float(got), by_hand(eps), rtol=1e-5)
  # The interpolation point matters: eps = 1/2 for all would give another value.
  assert abs(by_hand(np.full((5, 1), 0.5)) - by_hand(eps)) > 1e-2 * by_hand(eps)


def test_gradient_penalty_takes_each_examples_norm_over_all_its_axes():
  # Images [B, H, W, C]: f(x) = sum(x * a) has gradient a, ‖a‖ over H, W, C = 3.
  a = jnp.full((2, 2, 1), 1.5)  # ‖a‖ = sqrt(4 * 2.25) = 3 -> (3 - 1)² = 4.
  real, fake = jnp.ones((3, 2, 2, 1)), jnp.zeros((3, 2, 2, 1))
  gp = penalty(lambda x: jnp.sum(x * a, axis=(1, 2, 3)), real, fake,
               jax.random.PRNGKey(0))
  assert float(gp) == pytest.approx(4.0, rel=1e-6)


def test_feature_matching_loss_is_squared_distance_of_means():
  real = jnp.array([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
  fake = jnp.zeros((1, 2))
  assert float(losses.feature_matching_loss(real, fake)) == pytest.approx(13.0)


def test_registry_has_every_variant():
  assert set(losses.LOSSES) == {"minimax", "non_saturating", "lsgan", "wgan", "wgan_gp",
                                "hinge"}
  assert losses.LOSSES["wgan"].clip_d and not losses.LOSSES["wgan_gp"].clip_d
  assert losses.LOSSES["wgan_gp"].d_penalty is losses.gradient_penalty
  assert {n for n, loss in losses.LOSSES.items() if loss.cross_entropy} == {
      "minimax", "non_saturating"}
