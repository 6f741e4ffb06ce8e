"""Sample-quality metrics as pure, jit-friendly functions of features and probabilities.

Every function takes arrays and returns arrays (no host work, no Python branches on
values), so it can be jitted, vmapped or called inside a training step. Definitions are
in the docstrings; `jaxgan/eval/parzen.py` holds the Parzen-window estimate.

Conventions: features are `[N, F]` float (penultimate-layer activations of a feature
network); probabilities are `[N, C]` float rows summing to 1 (the network's softmax).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
# Full float32 products even where the default is lower (TF32 on GPU, bf16 passes on TPU):
# metrics compare small differences of large sums.
HIGHEST = jax.lax.Precision.HIGHEST


def _matmul(a: Array, b: Array) -> Array:
  return jnp.matmul(a, b, precision=HIGHEST)


# --------------------------------------------------------------------------- FID
class Moments(NamedTuple):
  """Mean [F] and covariance [F, F] (unbiased, ddof=1) of a feature set."""

  mean: Array
  cov: Array


def feature_moments(features: Array) -> Moments:
  """Mean and unbiased covariance of `features` [N, F] (N >= 2).

  The features are centred before the product, so float32 keeps its precision even when
  the mean is large compared to the spread.
  """
  mean = jnp.mean(features, axis=0)
  centred = features - mean
  cov = _matmul(centred.T, centred) / (features.shape[0] - 1)
  return Moments(mean, cov)


def _sqrt_psd(matrix: Array) -> Array:
  """Symmetric square root of a symmetric PSD matrix (negative eigenvalues clipped)."""
  w, v = jnp.linalg.eigh(matrix)
  return _matmul(v * jnp.sqrt(jnp.clip(w, 0.0)), v.T)


def frechet_distance(mean1: Array, cov1: Array, mean2: Array, cov2: Array) -> Array:
  """Fréchet (2-Wasserstein²) distance of N(mean1, cov1) and N(mean2, cov2):

      d² = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2}).

  Tr (Σ1 Σ2)^{1/2} is computed as Σ_i √λ_i with λ the eigenvalues of the symmetric PSD
  matrix Σ1^{1/2} Σ2 Σ1^{1/2} (similar to Σ1 Σ2), which avoids the complex-valued
  `sqrtm` of the non-symmetric product. Precision follows the inputs' dtype: pass
  float64 (under `jax.enable_x64`) to get FIDs of near-identical sets right to ~1e-6;
  float32 loses eigenvalues below ~1e-7 × the largest.
  """
  sqrt1 = _sqrt_psd(cov1)
  middle = _matmul(_matmul(sqrt1, cov2), sqrt1)
  middle = (middle + middle.T) / 2  # Symmetric up to rounding; make it exactly so.
  trace_sqrt = jnp.sum(jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh(middle), 0.0)))
  diff = mean1 - mean2
  return diff @ diff + jnp.trace(cov1) + jnp.trace(cov2) - 2.0 * trace_sqrt


def fid_from_moments(a: Moments, b: Moments) -> Array:
  """FID between two feature sets summarised by `feature_moments`."""
  return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def fid(features_a: Array, features_b: Array) -> Array:
  """Fréchet Inception Distance (Heusel et al. 2017) of two feature sets [N, F], [M, F]:
  the Fréchet distance of Gaussians fitted to each (`frechet_distance`)."""
  return fid_from_moments(feature_moments(features_a), feature_moments(features_b))


# --------------------------------------------------------------------------- KID
def polynomial_kernel(x: Array, y: Array) -> Array:
  """k(x, y) = (x·y / F + 1)³ for rows x [N, F], y [M, F] -> [N, M] (Bińkowski et al.)."""
  return (_matmul(x, y.T) / x.shape[-1] + 1.0) ** 3


def mmd2_unbiased(x: Array, y: Array) -> Array:
  """Unbiased estimate of MMD² with `polynomial_kernel` between x [m, F] and y [n, F]:

      1/(m(m−1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n−1)) Σ_{i≠j} k(y_i, y_j)
      − 2/(mn) Σ_{i,j} k(x_i, y_j).

  Its expectation is 0 when x and y come from the same distribution (it can be < 0).
  """
  m, n = x.shape[0], y.shape[0]
  kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  sum_xx = jnp.sum(kxx) - jnp.trace(kxx)
  sum_yy = jnp.sum(kyy) - jnp.trace(kyy)
  return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * jnp.sum(kxy) / (m * n)


def kid(key: Array, features_a: Array, features_b: Array, num_subsets: int = 100,
        subset_size: int = 1000) -> tuple[Array, Array]:
  """Kernel Inception Distance (Bińkowski et al. 2018): (mean, std) over `num_subsets`
  random subsets of `subset_size` rows of each set (drawn without replacement within a
  subset) of `mmd2_unbiased`. `subset_size` is capped at the smaller set's size. The
  subsets are computed one at a time (`lax.map`) so memory stays O(subset_size²).
  std is the population standard deviation over subsets (ddof=0, as torch-fidelity).
  """
  size = min(subset_size, features_a.shape[0], features_b.shape[0])

  def one(k: Array) -> Array:
    ka, kb = jax.random.split(k)
    ia = jax.random.permutation(ka, features_a.shape[0])[:size]
    ib = jax.random.permutation(kb, features_b.shape[0])[:size]
    return mmd2_unbiased(features_a[ia], features_b[ib])

  values = jax.lax.map(one, jax.random.split(key, num_subsets))
  return jnp.mean(values), jnp.std(values)


# --------------------------------------------------------------------------- IS
def inception_score(probs: Array, num_splits: int = 10) -> tuple[Array, Array]:
  """Inception Score (Salimans et al. 2016) of class probabilities p(y|x) [N, C]:

      IS = exp( E_x KL(p(y|x) ‖ p(y)) ),  p(y) = E_x p(y|x),

  computed on each of `num_splits` equal consecutive splits (the last N mod num_splits
  rows are dropped) with p(y) the split's own marginal; returns (mean, std) over
  splits, as the reference implementation does. 1 ≤ IS ≤ C: C for confident
  predictions spread evenly over C classes, 1 when every x gets the same p(y|x).
  """
  per_split = probs.shape[0] // num_splits
  p = probs[:per_split * num_splits].reshape(num_splits, per_split, -1)
  marginal = jnp.mean(p, axis=1, keepdims=True)
  # xlogy: 0 · log 0 = 0, so one-hot predictions give exact values.
  kl = jnp.sum(jax.scipy.special.xlogy(p, p) - jax.scipy.special.xlogy(p, marginal),
               axis=-1)
  scores = jnp.exp(jnp.mean(kl, axis=1))
  return jnp.mean(scores), jnp.std(scores)


# --------------------------------------------------------------------------- modes
class ModeStats(NamedTuple):
  """histogram: [C] int32 counts of predicted classes; covered: classes with count > 0;
  kl: KL(q ‖ p) of the predicted-class frequencies q to the real label distribution p."""

  histogram: Array
  covered: Array
  kl: Array


def mode_statistics(predicted: Array, real_distribution: Array) -> ModeStats:
  """Mode statistics of generated samples (as in Che et al. 2017, Srivastava et al. 2017).

  predicted: [N] int class ids in [0, C) (the classifier's argmax on generated samples).
  real_distribution: [C] class frequencies of real data (positive, sums to 1).

  KL(q ‖ p) = Σ_c q_c log(q_c / p_c) with q the normalised histogram: 0 when the
  generator reproduces the label proportions, log(1 / p_c) when it only makes class c.
  It stays finite when modes are missing (0 · log 0 = 0).
  """
  num_classes = real_distribution.shape[0]
  histogram = jnp.bincount(predicted, length=num_classes).astype(jnp.int32)
  q = histogram / jnp.maximum(jnp.sum(histogram), 1)
  kl = jnp.sum(jax.scipy.special.xlogy(q, q) - jax.scipy.special.xlogy(q, real_distribution))
  return ModeStats(histogram, jnp.sum(histogram > 0).astype(jnp.int32), kl)
