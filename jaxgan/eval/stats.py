"""FID reference statistics: `mu` and `sigma` of a feature set, in pytorch-fid's file format.

    mu, sigma = feature_stats(features)                 # float64, as pytorch-fid
    save_stats("cifar10_train.npz", mu, sigma, num_samples=50_000, protocol={...})
    ref = load_stats("cifar10_train.npz")               # also pytorch-fid's --save-stats
    fid = fid_from_stats(mu, sigma, ref.mu, ref.sigma)

pytorch-fid (`--save-stats`, `calculate_activation_statistics`) takes the mean and the
unbiased covariance (`np.cov(rowvar=False)`) of float32 features in float64 and writes
them with `np.savez(path, mu=mu, sigma=sigma)`; its FID reads `mu` and `sigma` from any
.npz. jaxgan writes the same two arrays, and beside them `num_samples` and what the
features were computed with (`weights_sha256`, `network`), which pytorch-fid ignores;
comparing against a file whose `weights_sha256` differs from this run's network is
refused (features of two networks are not comparable). The Fréchet distance is
jaxgan.eval.metrics.frechet_distance in float64: Tr (Σ1 Σ2)^{1/2} from the eigenvalues of
Σ1^{1/2} Σ2 Σ1^{1/2}, which is what scipy's sqrtm in pytorch-fid approximates (its
trace), without its eps fallback for singular products (fewer samples than features).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import fileio
from jaxgan.errors import EvalError
from jaxgan.eval import metrics

MIN_SAMPLES = 2  # The unbiased covariance needs two.


class Stats(NamedTuple):
  mu: np.ndarray                 # [F] float64
  sigma: np.ndarray              # [F, F] float64
  num_samples: int | None        # None: not recorded (e.g. pytorch-fid's files)
  weights_sha256: str | None     # the network's weights, when recorded


def feature_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
  """(mu [F], sigma [F, F]) of features [N, F] in float64, as pytorch-fid computes them."""
  features = np.asarray(features, np.float64)
  if features.shape[0] < MIN_SAMPLES:
    raise EvalError(f"{features.shape[0]} samples are too few for FID statistics: "
                    f"expected at least {MIN_SAMPLES} (and thousands for a meaningful "
                    "FID: 10,000 or 50,000 in papers).")
  return np.mean(features, axis=0), np.cov(features, rowvar=False)


def save_stats(path: str, mu: np.ndarray, sigma: np.ndarray, num_samples: int,
               weights_sha256: str, network: str) -> None:
  """Writes pytorch-fid's `mu` and `sigma` (plus what they were computed with)
  atomically to `path` (.npz)."""
  def save(tmp: str) -> None:
    with open(tmp, "wb") as f:
      np.savez(f, mu=mu, sigma=sigma, num_samples=np.int64(num_samples),
               weights_sha256=np.str_(weights_sha256), network=np.str_(network))
  fileio.save_with(path, save)


def load_stats(path: str, feature_dim: int, flag: str = "--ref_stats",
               weights_sha256: str | None = None) -> Stats:
  """The `mu` and `sigma` of an .npz written by jaxgan or pytorch-fid; EvalError naming
  the flag for a missing file, missing arrays, another dimension, non-finite values,
  or statistics of other network weights."""
  if not os.path.isfile(path):
    raise EvalError(f"{flag}={path!r}: no such file; expected an .npz with mu and sigma "
                    "(python -m jaxgan.evaluate --save_stats=... or pytorch-fid "
                    "--save-stats).")
  try:
    with np.load(path, allow_pickle=False) as f:
      arrays = {k: f[k] for k in f.files}
  except (ValueError, OSError, EOFError) as e:
    raise EvalError(f"{flag}={path!r} is not a readable .npz file ({e}); expected mu "
                    "and sigma.") from None
  for key in ("mu", "sigma"):
    if key not in arrays:
      raise EvalError(f"{flag}={path!r} has no {key!r} array (it has {sorted(arrays)}); "
                      "expected mu and sigma as pytorch-fid's --save-stats writes them.")
  mu, sigma = np.asarray(arrays["mu"], np.float64), np.asarray(arrays["sigma"], np.float64)
  if mu.shape != (feature_dim,) or sigma.shape != (feature_dim, feature_dim):
    raise EvalError(f"{flag}={path!r} holds mu {list(mu.shape)} and sigma "
                    f"{list(sigma.shape)}; the feature network's features have "
                    f"{feature_dim} dimensions: expected mu [{feature_dim}] and sigma "
                    f"[{feature_dim}, {feature_dim}] (statistics of the same network).")
  if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
    raise EvalError(f"{flag}={path!r} holds NaN or Inf; expected finite statistics.")
  recorded = str(arrays["weights_sha256"]) if "weights_sha256" in arrays else None
  if weights_sha256 is not None and recorded is not None and recorded != weights_sha256:
    raise EvalError(f"{flag}={path!r} was computed with weights of sha256 "
                    f"{recorded[:16]}..., this evaluation uses {weights_sha256[:16]}...: "
                    "expected statistics of the same network weights.")
  num = int(arrays["num_samples"]) if "num_samples" in arrays else None
  return Stats(mu, sigma, num, recorded)


def fid_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                   sigma2: np.ndarray) -> float:
  """The Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2), in float64."""
  with jax.enable_x64(True):
    args = [jnp.asarray(np.asarray(v, np.float64)) for v in (mu1, sigma1, mu2, sigma2)]
    return float(_frechet(*args))


_frechet = jax.jit(metrics.frechet_distance)


def fid_of_features(features: Any, reference: Stats) -> float:
  """FID of features [N, F] against reference statistics; equal to fid_from_stats of
  feature_stats(features). With fewer samples than dimensions (N <= F) the trace term
  comes from an N x N matrix: the nonzero eigenvalues of Σ_ref Σ, Σ = CᵀC / (N - 1) with
  C the centred features, are those of the symmetric PSD C Σ_ref Cᵀ / (N - 1), so
  Tr (Σ_ref Σ)^{1/2} is the sum of their square roots (exact, and N³ work instead of
  two eigendecompositions of F x F matrices)."""
  x = np.asarray(features, np.float64)
  n, dim = x.shape
  if n > dim:
    return fid_from_stats(*feature_stats(x), reference.mu, reference.sigma)
  feature_stats(x)  # Refuses fewer than MIN_SAMPLES.
  mu = x.mean(axis=0)
  centred = x - mu
  small = centred @ reference.sigma @ centred.T / (n - 1)
  eigenvalues = np.linalg.eigvalsh((small + small.T) / 2)
  trace_sqrt = np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None)))
  diff = mu - reference.mu
  return float(diff @ diff + np.trace(reference.sigma) + np.sum(centred ** 2) / (n - 1)
               - 2.0 * trace_sqrt)


IS_SPLITS = 10  # The Inception Score's splits, as the evaluator's.


def score(fake_features: Any, fake_probs: Any, reference: Stats,
          real_features: Any = None, seed: int = 0) -> dict[str, Any]:
  """The metrics of samples' features against a reference: FID (float64 statistics, as
  pytorch-fid), the Inception Score of their probabilities (10 splits, given 10 samples
  or more), and, when the reference's features are given, KID and precision, recall,
  density and coverage (k = 5) as the evaluator computes them on any features."""
  from jaxgan import rng
  from jaxgan.eval import evaluator, prdc
  n = int(np.shape(fake_features)[0])
  out: dict[str, Any] = {"fid": fid_of_features(fake_features, reference),
                         "num_samples": n, "num_real": reference.num_samples}
  if n >= IS_SPLITS:
    value, std = metrics.inception_score(jnp.asarray(fake_probs), IS_SPLITS)
    out.update(inception_score=float(value), inception_score_std=float(std))
  if real_features is not None:
    fake, real = jnp.asarray(fake_features), jnp.asarray(real_features)
    kid, kid_std = jax.jit(metrics.kid, static_argnums=(3, 4))(
        rng.seed_stream(seed, rng.KID_SUBSETS), fake, real, evaluator.KID_SUBSETS,
        evaluator.KID_SUBSET_SIZE)
    out.update(kid=float(kid), kid_std=float(kid_std))
    if min(n, real.shape[0]) > evaluator.PRDC_K:
      out.update({k: float(v) for k, v in
                  prdc.prdc(real, fake, evaluator.PRDC_K)._asdict().items()},
                 prdc_k=evaluator.PRDC_K)
  return out
