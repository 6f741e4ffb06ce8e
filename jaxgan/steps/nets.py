"""The networks' forward passes a step takes: G, G as D's input (packing), D (features).

Built once per `make_steps` from the settings: the choices (class labels, packing, the
feature layer, D's augmentation) are made here, before tracing.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgan.state import GAN, NetState
from jaxgan.steps.augment import Augmentation

Array = jax.Array

# The augmentation's key: a fold_in of each D pass's dropout key (augmentations that
# draw nothing leave every other key as it was).
AUGMENT_STREAM = 1


class DOut(NamedTuple):
  """One D pass: logits [B], feature layer [B, F] (None unless feature matching reads
  it), D's BatchNorm stats after the pass."""

  logits: Array
  features: Array | None
  batch_stats: object


def find_features(intermediates) -> Array:
  """The one array sown as 'features' anywhere in D's intermediates (wrappers nest it)."""
  found = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(intermediates)
           if any(getattr(k, "key", None) == "features" for k in path)]
  if len(found) != 1:
    raise ValueError(
        f"feature matching needs D's feature layer, but D sowed {len(found)} arrays "
        "named 'features' (expected exactly one): in D's __call__, record the [B, F] "
        "input of its last layer with `self.sow('intermediates', 'features', h)` "
        "(jaxgan.models.sow_features(self, h) does that).")
  return found[0]


def _no_labels(labels) -> dict:
  return {}


def _labels(labels) -> dict:
  return {"labels": labels}


def _no_features(intermediates) -> None:
  return None


class Nets:
  """G and D as a step runs them.

  generate(g, z, train, labels) -> (images, G's batch_stats);
  generate_for_d(g, key, labels, count) -> (D's fake input, G's batch_stats);
  discriminate(d_params, batch_stats, x, rng, labels) -> DOut.
  """

  def __init__(self, gan: GAN, settings, augment: Augmentation):
    self.gan, self.pack, self.batch_size = gan, settings.pack, settings.batch_size
    self.augment = augment
    # Class labels reach G and D only when conditional.
    self._with_labels = _labels if gan.num_classes else _no_labels
    # D's feature layer is read only for feature matching: any other D need not sow it.
    self._collections = (["batch_stats", "intermediates"] if settings.feature_matching
                         else ["batch_stats"])
    self._features = find_features if settings.feature_matching else _no_features

  def generate(self, g: NetState, z: Array, train: bool, labels=None):
    """G(z) -> (images, new batch_stats); train mode uses and updates batch statistics."""
    variables = {"params": g.params, "batch_stats": g.batch_stats}
    if not train:
      return (self.gan.generator.apply(variables, z, train=False,
                                       **self._with_labels(labels)), g.batch_stats)
    images, mutated = self.gan.generator.apply(variables, z, train=True,
                                               mutable=["batch_stats"],
                                               **self._with_labels(labels))
    return images, mutated.get("batch_stats", g.batch_stats)

  def generate_for_d(self, g: NetState, key: Array, labels=None, count: int | None = None):
    """D's fake input, G in train mode: `count` images (default: the batch size), made
    in m = pack passes of `count` images each (PacGAN: G's BatchNorm normalises each pass
    on its own, as the authors' code generates each of the m packed samples separately),
    concatenated channel-wise. Returns (images, G's new batch_stats)."""
    count = self.batch_size if count is None else count
    z = self.gan.sample_noise(key, count * self.pack)
    if self.pack == 1:  # One pass (slicing and concatenating one part would copy).
      return self.generate(g, z, True, labels)
    parts = []
    for i in range(self.pack):
      images, batch_stats = self.generate(g, z[i * count:(i + 1) * count], True, labels)
      g = g.replace(batch_stats=batch_stats)
      parts.append(images)
    return jnp.concatenate(parts, axis=-1), g.batch_stats

  def discriminate(self, d_params, batch_stats, x: Array, rng: Array, labels=None) -> DOut:
    """D(augment(x)) in train mode (dropout on; BatchNorm on x's own batch statistics)."""
    x = self.augment(x, jax.random.fold_in(rng, AUGMENT_STREAM))
    variables = {"params": d_params, "batch_stats": batch_stats}
    logits, mutated = self.gan.discriminator.apply(
        variables, x, train=True, rngs={"dropout": rng}, mutable=self._collections,
        **self._with_labels(labels))
    return DOut(logits, self._features(mutated.get("intermediates", {})),
                mutated.get("batch_stats", batch_stats))
