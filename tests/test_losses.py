"""Loss values on hand-computed logits."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import losses


def sigmoid(x):
  return 1.0 / (1.0 + math.exp(-x))


REAL = [0.0, 2.0]
FAKE = [0.0, -1.0]


def test_bce_d_loss_is_half_the_sum_of_real_and_fake_cross_entropies():
  expected = 0.5 * (-(math.log(sigmoid(0.0)) + math.log(sigmoid(2.0))) / 2
                    - (math.log(1 - sigmoid(0.0)) + math.log(1 - sigmoid(-1.0))) / 2)
  got = losses.bce_d_loss(jnp.array(REAL), jnp.array(FAKE))
  assert float(got) == pytest.approx(expected, rel=1e-6)
  assert float(got) == pytest.approx(0.4566210, rel=1e-6)


def test_minimax_g_loss_is_mean_log_one_minus_d():
  expected = (math.log(1 - sigmoid(0.0)) + math.log(1 - sigmoid(-1.0))) / 2
  assert float(losses.minimax_g_loss(jnp.array(FAKE))) == pytest.approx(expected, rel=1e-6)
  assert expected == pytest.approx(-0.5032045, rel=1e-6)


def test_non_saturating_g_loss_is_minus_mean_log_d():
  expected = -(math.log(sigmoid(0.0)) + math.log(sigmoid(-1.0))) / 2
  got = losses.non_saturating_g_loss(jnp.array(FAKE))
  assert float(got) == pytest.approx(expected, rel=1e-6)
  assert expected == pytest.approx(1.0032045, rel=1e-6)


def test_losses_are_finite_for_extreme_logits():
  extreme = jnp.array([-200.0, 200.0])
  for loss in losses.LOSSES.values():
    assert np.isfinite(float(loss.d_loss(extreme, extreme)))
    assert np.isfinite(float(loss.g_loss(extreme)))


def test_non_saturating_gradient_is_strong_where_minimax_saturates():
  # Early in training D rejects fakes confidently (logit -10): the minimax G gradient
  # vanishes, the non-saturating one does not (the paper's motivation, section 3).
  import jax
  g_mm = jax.grad(lambda l: losses.minimax_g_loss(l))(jnp.array([-10.0]))
  g_ns = jax.grad(lambda l: losses.non_saturating_g_loss(l))(jnp.array([-10.0]))
  assert abs(float(g_mm[0])) < 1e-4
  assert abs(float(g_ns[0])) > 0.99
