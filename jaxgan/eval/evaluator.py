"""Evaluation of a generator (or of real images) against a dataset's test split.

    ev = Evaluator.for_dataset(extractor, train_ds, test_ds, num_samples=10_000)
    results = ev.evaluate_generator(sample_fn, state, pixel_range, noise_fn)
    results = ev.evaluate_images(images)     # e.g. the training split: the real-data row

What is compared with what (defaults, as in the issue and the papers):
  * FID, KID: features of `num_samples` generated images vs all test images;
    KID over 100 subsets of min(1000, n) images, reported as mean and std.
  * Inception Score: the generated images' class probabilities, 10 splits.
  * modes: the histogram of their argmax classes, classes covered, KL(q ‖ p) to the
    test split's label frequencies.
  * improved precision and recall (Kynkäänniemi et al. 2019), density and coverage
    (Naeem et al. 2020): k = 5 nearest neighbours among the same features as FID,
    against all test images (jaxgan.eval.prdc, the prdc authors' definitions).
  * Parzen (optional: a few seconds to minutes): the generated images as centres,
    σ chosen on 1,000 training images starting at 5/6 of the split (MNIST's
    train[50000:51000], the paper's validation images), the test images scored.
The real test features (and their k-NN radii) are computed once, when the Evaluator
is made; an evaluation
then costs one pass of the feature network over the samples plus the metrics.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import fileio, rng
from jaxgan.data import Dataset
from jaxgan.eval import features as features_lib
from jaxgan.errors import EvalError
from jaxgan.eval import metrics, parzen, prdc

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
IS_SPLITS = 10
PRDC_K = prdc.NEAREST_K
# The fewest samples every metric is defined for: IS needs one per split, PRDC k + 1.
MIN_SAMPLES = max(IS_SPLITS, PRDC_K + 1)

# The keys of an evaluation result that are numbers (logged to metrics.jsonl).
SCALAR_KEYS = ("fid", "kid", "kid_std", "inception_score", "inception_score_std",
               "parzen_ll", "parzen_se", "parzen_sigma", "modes_covered", "mode_kl",
               "precision", "recall", "density", "coverage", "num_samples", "num_real", "classifier_accuracy")


def parzen_validation(images: np.ndarray, num_valid: int = parzen.PAPER_NUM_VALID,
                      held_out: bool = False) -> np.ndarray:
  """The Parzen σ-validation images: the first `num_valid` of a held-out validation
  split (--num_valid; the paper's train[50000:51000] of MNIST with --num_valid=10000),
  or, without one, `num_valid` training images from 5/6 of the split on (the same
  indices, but then images the generator was trained on)."""
  if held_out:
    return images[:num_valid]
  start = min(images.shape[0] * 5 // 6, max(images.shape[0] - num_valid, 0))
  return images[start:start + num_valid]


def parzen_images(train: Dataset) -> np.ndarray:
  """The Parzen σ-validation images of a training split (held out if it has some)."""
  if train.valid_images is not None:
    return parzen_validation(train.valid_images, held_out=True)
  return parzen_validation(train.images)


@jax.jit
def _sample_metrics(key: jax.Array, fake_features: jax.Array, fake_probs: jax.Array,
                    mode_probs: jax.Array, real_features: jax.Array,
                    real_moments: metrics.Moments,
                    label_distribution: jax.Array) -> dict[str, jax.Array]:
  kid, kid_std = metrics.kid(key, fake_features, real_features, KID_SUBSETS,
                             KID_SUBSET_SIZE)
  score, score_std = metrics.inception_score(fake_probs, IS_SPLITS)
  modes = metrics.mode_statistics(jnp.argmax(mode_probs, axis=1), label_distribution)
  return {"kid": kid, "kid_std": kid_std, "inception_score": score,
          "inception_score_std": score_std, "modes_covered": modes.covered,
          "mode_kl": modes.kl, "mode_histogram": modes.histogram,
          "fake_moments": metrics.feature_moments(fake_features)}


@jax.jit
def _fid64(a: metrics.Moments, b: metrics.Moments) -> jax.Array:
  return metrics.fid_from_moments(a, b)


def fid_float64(a: metrics.Moments, b: metrics.Moments) -> float:
  """FID from float32 moments, the matrix square root done in float64 (see
  metrics.frechet_distance on why)."""
  with jax.enable_x64(True):
    to64 = lambda m: metrics.Moments(*(jnp.asarray(np.asarray(v), jnp.float64) for v in m))
    return float(_fid64(to64(a), to64(b)))


_parzen_jit = jax.jit(parzen.parzen_estimate, static_argnames="chunk_size")


@dataclasses.dataclass
class Evaluator:
  """Holds the real data's features and the Parzen images of one dataset."""

  extractor: features_lib.FeatureExtractor
  dataset: str
  num_samples: int
  real_features: jax.Array          # [N_test, F]
  real_moments: metrics.Moments
  real_radii: jax.Array             # [N_test] k-NN radii of the test features (PRDC)
  label_distribution: jax.Array     # [C] test label frequencies
  parzen_valid: np.ndarray | None   # [V, H, W, C] uint8, None = no Parzen estimate
  parzen_test: np.ndarray | None    # [N_test, H, W, C] uint8
  # The network whose classes the mode statistics count (the dataset's classifier) when
  # `extractor` is a general-purpose one (Inception: ImageNet's classes); None: the
  # extractor itself, or no mode statistics when it has no dataset.
  mode_extractor: features_lib.FeatureExtractor | None = None

  @classmethod
  def for_dataset(cls, extractor: features_lib.FeatureExtractor, train: Dataset | None,
                  test: Dataset, num_samples: int = 10_000,
                  with_parzen: bool = True,
                  mode_extractor: features_lib.FeatureExtractor | None = None
                  ) -> "Evaluator":
    """Checks the extractor fits the data (EvalError if not); computes test features.
    train: the Parzen validation images' source (None without Parzen). mode_extractor:
    the dataset's classifier for the mode statistics, when `extractor` is not trained
    on the dataset."""
    features_lib.check_compatible(extractor, test.name, test.image_shape)
    if mode_extractor is not None:
      features_lib.check_compatible(mode_extractor, test.name, test.image_shape)
    real_features, _ = features_lib.extract(extractor, test.images)
    counts = np.bincount(test.labels, minlength=(mode_extractor or extractor).num_classes)
    return cls(extractor=extractor, dataset=test.name, num_samples=num_samples,
               mode_extractor=mode_extractor,
               real_features=real_features,
               real_moments=jax.jit(metrics.feature_moments)(real_features),
               real_radii=prdc.nearest_neighbour_radii(real_features, PRDC_K),
               label_distribution=jnp.asarray(counts / counts.sum(), jnp.float32),
               parzen_valid=parzen_images(train) if with_parzen else None,
               parzen_test=test.images if with_parzen else None)

  def evaluate_images(self, images: np.ndarray | jax.Array, seed: int = 0
                      ) -> dict[str, Any]:
    """All metrics of `images` [n, H, W, C] (uint8, or float in [0, 1]) as samples.

    Returns fid, kid, kid_std, inception_score, inception_score_std, parzen_ll,
    parzen_se, parzen_sigma, modes_covered, mode_kl, precision, recall, density,
    coverage (k = prdc_k), sample counts, the classifier's accuracy, the mode histogram
    and timings (s). EvalError for fewer than MIN_SAMPLES images.
    """
    if images.shape[0] < MIN_SAMPLES:
      raise EvalError(f"{images.shape[0]} samples are too few to evaluate: expected at "
                      f"least {MIN_SAMPLES} (Inception Score's {IS_SPLITS} splits, "
                      f"precision/recall's k = {PRDC_K} neighbours); FID and KID want "
                      "thousands (10,000 by default).")
    t0 = time.perf_counter()
    fake_features, fake_probs = features_lib.extract(self.extractor, images)
    modes_by = self.mode_extractor or (
        self.extractor if self.extractor.dataset is not None else None)
    mode_probs = (fake_probs if modes_by is None or modes_by is self.extractor
                  else features_lib.extract(modes_by, images)[1])
    out = _sample_metrics(rng.seed_stream(seed, rng.KID_SUBSETS),
                          fake_features, fake_probs, mode_probs, self.real_features,
                          self.real_moments, self.label_distribution)
    out = jax.device_get(out)
    results: dict[str, Any] = {
        "fid": fid_float64(out.pop("fake_moments"), self.real_moments),
        **{k: float(v) for k, v in out.items() if k != "mode_histogram"},
        "mode_histogram": [int(c) for c in out["mode_histogram"]],
        "num_samples": int(images.shape[0]),
        "num_real": int(self.real_features.shape[0]),
        "classifier": self.extractor.name,
        "classifier_accuracy": self.extractor.accuracy,
    }
    results["modes_covered"] = int(results["modes_covered"])
    if modes_by is None:  # A general-purpose network's classes are not the dataset's.
      results.update(modes_covered=None, mode_kl=None, mode_histogram=None)
    if hasattr(self.extractor, "protocol"):  # The classifier's and Inception's.
      results["protocol"] = dict(self.extractor.protocol(), reference={
          "split": f"{self.dataset} test", "num_samples": results["num_real"]})
      results["mode_classifier"] = modes_by.name if modes_by is not None else None
    results["seconds_features_metrics"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    results.update(prdc.prdc(self.real_features, fake_features, PRDC_K,
                             real_radii=self.real_radii)._asdict(), prdc_k=PRDC_K,
                   seconds_prdc=time.perf_counter() - t1)
    if self.parzen_valid is not None:
      t1 = time.perf_counter()
      centres = _unit(images)
      res = jax.device_get(_parzen_jit(centres, _unit(self.parzen_valid),
                                       _unit(self.parzen_test)))
      results.update(parzen_ll=float(res.ll), parzen_se=float(res.se),
                     parzen_sigma=float(res.sigma),
                     parzen_valid_ll=[float(v) for v in res.valid_ll],
                     num_parzen_valid=int(self.parzen_valid.shape[0]),
                     num_parzen_test=int(self.parzen_test.shape[0]),
                     seconds_parzen=time.perf_counter() - t1)
    else:
      results.update(parzen_ll=None, parzen_se=None, parzen_sigma=None)
    return results

  def generate(self, sample: Callable[[Any, jax.Array], jax.Array], state: Any,
               noise: Callable[[jax.Array, int], jax.Array],
               pixel_range: tuple[float, float], key: jax.Array,
               batch_size: int = 1000) -> jax.Array:
    """`num_samples` images G(z) [n, H, W, C] mapped to [0, 1], z = noise(key, n)
    drawn batch by batch (one jitted batch shape)."""
    lo, hi = pixel_range
    batches = []
    for i, start in enumerate(range(0, self.num_samples, batch_size)):
      z = noise(jax.random.fold_in(key, i), batch_size)
      batches.append(sample(state, z)[:self.num_samples - start])
    return jnp.clip((jnp.concatenate(batches) - lo) / (hi - lo), 0.0, 1.0)


def _unit(images: np.ndarray | jax.Array) -> jax.Array:
  if images.dtype == np.uint8:
    return jnp.asarray(images, jnp.float32) / 255.0
  return jnp.asarray(images, jnp.float32)


def scalars(results: dict[str, Any], prefix: str = "eval/") -> dict[str, float]:
  """The numeric entries of `results` (SCALAR_KEYS that are set), for metrics.jsonl."""
  return {prefix + k: float(results[k]) for k in SCALAR_KEYS
          if results.get(k) is not None}


def write_results(path: str, results: dict[str, Any]) -> None:
  """Writes results as JSON (atomically)."""
  fileio.write_json(path, results)
