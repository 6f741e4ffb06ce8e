"""Metrics on cases with known answers (jaxgan/eval/metrics.py, parzen.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from jaxgan.eval import metrics, parzen

# Jitted as the evaluator runs them (one compilation instead of many eager ops).
kid = jax.jit(metrics.kid, static_argnums=(3, 4))
inception_score = jax.jit(metrics.inception_score, static_argnums=1)
frechet_distance = jax.jit(metrics.frechet_distance)
fid = jax.jit(metrics.fid)
feature_moments = jax.jit(metrics.feature_moments)
mmd2_unbiased = jax.jit(metrics.mmd2_unbiased)
mode_statistics = jax.jit(metrics.mode_statistics)
parzen_log_likelihoods = jax.jit(parzen.parzen_log_likelihoods, static_argnums=3)
parzen_estimate = jax.jit(parzen.parzen_estimate)


def _random_rotation(rng: np.random.Generator, dim: int) -> np.ndarray:
  q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
  return q


# --------------------------------------------------------------------------- Fréchet
def test_frechet_distance_of_commuting_gaussians_matches_closed_form():
  # Σ1 = R diag(a) Rᵀ, Σ2 = R diag(b) Rᵀ commute, so
  # d² = ‖μ1 − μ2‖² + Σ_i (√a_i − √b_i)².
  rng = np.random.default_rng(0)
  r = _random_rotation(rng, 4)
  a, b = np.array([1.0, 2.0, 0.5, 4.0]), np.array([0.25, 2.0, 2.0, 1.0])
  mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  with jax.enable_x64(True):
    got = frechet_distance(jnp.asarray(mu1), jnp.asarray(r @ np.diag(a) @ r.T),
                                   jnp.asarray(mu2), jnp.asarray(r @ np.diag(b) @ r.T))
  assert float(got) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_non_commuting_covariances_matches_scipy_sqrtm():
  from scipy.linalg import sqrtm
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
  s1, s2 = x @ x.T + np.eye(5), y @ y.T + 0.1 * np.eye(5)
  expected = np.trace(s1 + s2 - 2 * np.real(sqrtm(s1 @ s2)))
  with jax.enable_x64(True):
    got = frechet_distance(jnp.zeros(5), jnp.asarray(s1), jnp.zeros(5),
                                   jnp.asarray(s2))
  assert float(got) == pytest.approx(expected, rel=1e-8)


def test_fid_of_a_set_with_itself_is_zero():
  features = jnp.asarray(np.random.default_rng(2).normal(size=(500, 16)), jnp.float32)
  assert abs(float(fid(features, features))) < 1e-3


def test_fid_of_shifted_set_is_squared_shift():
  # Shifting by c moves the mean by c and keeps the covariance: FID = ‖c‖².
  features = jnp.asarray(np.random.default_rng(3).normal(size=(500, 16)), jnp.float32)
  shift = jnp.full((16,), 0.5)
  assert float(fid(features, features + shift)) == pytest.approx(4.0, rel=1e-3)


def test_feature_moments_are_mean_and_unbiased_covariance():
  x = np.random.default_rng(4).normal(size=(50, 3)).astype(np.float32) + 100.0
  moments = feature_moments(jnp.asarray(x))
  np.testing.assert_allclose(moments.mean, x.mean(0), rtol=1e-6)
  np.testing.assert_allclose(moments.cov, np.cov(x, rowvar=False), atol=1e-4)


# --------------------------------------------------------------------------- KID
def test_mmd2_unbiased_matches_direct_double_sum():
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(6, 3)), rng.normal(size=(7, 3)) + 0.3
  k = lambda a, b: (a @ b / 3 + 1) ** 3
  xx = sum(k(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / 30
  yy = sum(k(y[i], y[j]) for i in range(7) for j in range(7) if i != j) / 42
  xy = sum(k(x[i], y[j]) for i in range(6) for j in range(7)) / 42
  got = mmd2_unbiased(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
  assert float(got) == pytest.approx(xx + yy - 2 * xy, rel=1e-4)


def test_kid_of_samples_of_one_distribution_is_near_zero():
  rng = np.random.default_rng(6)
  a = jnp.asarray(rng.normal(size=(1000, 8)), jnp.float32)
  b = jnp.asarray(rng.normal(size=(1000, 8)), jnp.float32)
  shifted = b + 1.0
  same, same_std = kid(jax.random.PRNGKey(0), a, b, 20, 200)
  apart, _ = kid(jax.random.PRNGKey(0), a, shifted, 20, 200)
  # Unbiased: the mean over subsets is within noise of 0, far below a real difference.
  assert abs(float(same)) < 3 * float(same_std) + 1e-3
  assert float(apart) > 100 * abs(float(same))


def test_kid_subset_size_is_capped_at_the_smaller_set():
  a = jnp.asarray(np.random.default_rng(7).normal(size=(30, 4)), jnp.float32)
  value, std = kid(jax.random.PRNGKey(1), a, a + 2.0, num_subsets=5, subset_size=1000)
  # Every subset is then the whole set: all values equal, std 0.
  assert float(std) == pytest.approx(0.0, abs=1e-4)
  assert float(value) == pytest.approx(float(mmd2_unbiased(a, a + 2.0)), rel=1e-5)


# --------------------------------------------------------------------------- IS
def test_inception_score_of_confident_uniform_predictions_is_num_classes():
  probs = jax.nn.one_hot(jnp.arange(1000) % 10, 10)
  score, std = inception_score(probs, num_splits=10)
  assert float(score) == pytest.approx(10.0, rel=1e-5)
  assert float(std) == pytest.approx(0.0, abs=1e-5)


def test_inception_score_of_a_single_class_is_one():
  probs = jax.nn.one_hot(jnp.full((100,), 3), 10)
  assert float(inception_score(probs, 10)[0]) == pytest.approx(1.0)


def test_inception_score_of_uninformative_predictions_is_one():
  assert float(inception_score(jnp.full((100, 10), 0.1), 10)[0]) == (
      pytest.approx(1.0, rel=1e-6))


def test_inception_score_uses_each_splits_own_marginal():
  # Split 1 predicts only class 0, split 2 only class 1: each split's IS is 1.
  probs = jax.nn.one_hot(jnp.array([0] * 5 + [1] * 5), 2)
  score, _ = inception_score(probs, num_splits=2)
  assert float(score) == pytest.approx(1.0)


# --------------------------------------------------------------------------- modes
def test_mode_statistics_on_constructed_histogram():
  predicted = jnp.array([0] * 6 + [1] * 2 + [3] * 2)  # q = (.6, .2, 0, .2)
  p = jnp.array([0.25, 0.25, 0.25, 0.25])
  stats = mode_statistics(predicted, p)
  np.testing.assert_array_equal(stats.histogram, [6, 2, 0, 2])
  assert int(stats.covered) == 3
  expected = 0.6 * np.log(0.6 / 0.25) + 2 * 0.2 * np.log(0.2 / 0.25)
  assert float(stats.kl) == pytest.approx(expected, rel=1e-5)


def test_mode_kl_is_zero_for_matching_proportions_and_log_inverse_for_one_class():
  p = jnp.array([0.5, 0.3, 0.2])
  matching = jnp.array([0] * 5 + [1] * 3 + [2] * 2)
  assert float(mode_statistics(matching, p).kl) == pytest.approx(0.0, abs=1e-6)
  collapsed = mode_statistics(jnp.full((10,), 2), p)
  assert int(collapsed.covered) == 1
  assert float(collapsed.kl) == pytest.approx(np.log(1 / 0.2), rel=1e-5)


# --------------------------------------------------------------------------- Parzen
def _numpy_parzen(x, centres, sigma):
  """The paper's code, in float64 NumPy: a direct [N, M, D] log-sum-exp."""
  a = (x[:, None, :] - centres[None, :, :]) / sigma
  e = logsumexp(-0.5 * np.sum(a ** 2, axis=2), axis=1) - np.log(centres.shape[0])
  return e - centres.shape[1] * np.log(sigma * np.sqrt(2 * np.pi))


def test_parzen_log_likelihoods_match_numpy_logsumexp():
  rng = np.random.default_rng(8)
  centres = rng.uniform(size=(300, 49))
  x = rng.uniform(size=(70, 49))  # Not a multiple of the chunk size: padding is dropped.
  sigmas = np.array([0.1, 0.3, 1.0])
  got = parzen_log_likelihoods(x, centres, sigmas, chunk_size=32)
  expected = np.stack([_numpy_parzen(x, centres, s) for s in sigmas])
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-3)


def test_parzen_estimate_selects_best_validation_sigma_and_reports_standard_error():
  rng = np.random.default_rng(9)
  centres = rng.uniform(size=(200, 16))
  valid = centres[:50] + rng.normal(scale=0.2, size=(50, 16))
  test = centres[50:110] + rng.normal(scale=0.2, size=(60, 16))
  result = parzen_estimate(centres, valid, test)
  sigmas = np.logspace(-1, 0, 10)
  valid_means = [np.mean(_numpy_parzen(valid, centres, s)) for s in sigmas]
  best = sigmas[int(np.argmax(valid_means))]
  ll = _numpy_parzen(test, centres, best)
  assert float(result.sigma) == pytest.approx(best, rel=1e-6)
  np.testing.assert_allclose(result.valid_ll, valid_means, rtol=1e-5)
  assert float(result.ll) == pytest.approx(ll.mean(), rel=1e-5)
  assert float(result.se) == pytest.approx(ll.std() / np.sqrt(60), rel=1e-3)


def test_paper_sigmas_are_logspace_minus_one_to_zero():
  np.testing.assert_allclose(parzen.PAPER_SIGMAS, np.logspace(-1, 0, 10))
