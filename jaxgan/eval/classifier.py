"""The project's own feature network: a small CNN classifier trained on the dataset.

Inception weights cannot be downloaded here, so, as TF-GAN's MNIST example does, 28×28
grayscale data is evaluated with a classifier trained on the dataset's own training
split. Its penultimate layer (128 ReLU units) gives the FID/KID features and its softmax
the Inception Score and mode statistics.

A trained classifier is a folder:
    <dir>/classifier.json   dataset, architecture, sizes, test accuracy, training settings
    <dir>/params/           the parameters, an orbax checkpoint (no pickle)
and is found again by dataset name in a cache folder: `<cache>/<dataset>`, with the
cache `--classifier_dir`, by default `$XDG_CACHE_HOME/jaxgan/classifiers` (that is
`~/.cache/jaxgan/classifiers`).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgan.data import Dataset
from jaxgan.errors import EvalError

ARCHITECTURE = "cnn5x5s2-32-64-128"  # Bump when CNN changes: old folders then fail to load.
META_FILE = "classifier.json"


class CNN(nn.Module):
  """conv5×5/2(32)-ReLU → conv5×5/2(64)-ReLU → dense(128)-ReLU → dropout → dense(C).

  Input [B, H, W, C] float32 in [0, 1]; returns (features [B, 128], logits [B, C]).
  Strided 5×5 convolutions rather than 3×3 ones with max-pooling: on the 2-core CPU a
  batch-128 train step was about 3x faster (pooling's gradient is slow there).
  """

  num_classes: int
  feature_dim: int = 128
  dropout: float = 0.25

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    x = x - 0.5  # Roughly centred inputs train faster.
    x = nn.relu(nn.Conv(32, (5, 5), strides=2)(x))
    x = nn.relu(nn.Conv(64, (5, 5), strides=2)(x))
    features = nn.relu(nn.Dense(self.feature_dim)(x.reshape((x.shape[0], -1))))
    h = nn.Dropout(self.dropout, deterministic=not train)(features)
    return features, nn.Dense(self.num_classes)(h)


def default_cache_dir() -> str:
  """$XDG_CACHE_HOME/jaxgan/classifiers, or ~/.cache/jaxgan/classifiers."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "jaxgan", "classifiers")


def cache_path(dataset: str, classifier_dir: str = "") -> str:
  """Folder of the cached classifier for `dataset` ('' = the default cache)."""
  return os.path.join(os.path.abspath(classifier_dir or default_cache_dir()),
                      dataset.replace("/", "_"))


class Classifier:
  """A trained CNN: a `FeatureExtractor` (jaxgan.eval.features) for its dataset."""

  def __init__(self, params: Any, meta: dict[str, Any]):
    self.params = params
    self.meta = meta
    self.dataset: str | None = meta["dataset"]
    self.name = f"classifier:{meta['dataset']}"
    self.image_shape = tuple(meta["image_shape"])
    self.num_classes = int(meta["num_classes"])
    self.feature_dim = int(meta["feature_dim"])
    self.accuracy: float | None = meta.get("test_accuracy")
    self.module = CNN(self.num_classes, self.feature_dim)

  def apply(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """images [B, H, W, C] float32 in [0, 1] -> (features [B, 128], probs [B, C])."""
    return _classify(self.module, self.params, images)

  def protocol(self) -> dict[str, Any]:
    """What a result computed on these features states about them (as
    jaxgan.eval.inception's extractor does)."""
    m = self.meta
    return {"network": f"jaxgan classifier {m.get('architecture')} ({m['dataset']}, "
                       f"{self.feature_dim}-d penultimate layer)",
            "weights": f"python -m jaxgan.classifier (seed {m.get('seed')}, "
                       f"{m.get('epochs')} epochs on {m.get('train_examples')} images)",
            "test_accuracy": self.accuracy,
            "resize": "none: the dataset's own size, scaled to [0, 1]"}


@functools.partial(jax.jit, static_argnums=0)
def _classify(module: CNN, params: Any, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  # Jitted with the module static and the parameters traced, so every Classifier of
  # one architecture shares one compiled program per batch shape.
  features, logits = module.apply({"params": params}, images, train=False)
  return features, jax.nn.softmax(logits)


# --------------------------------------------------------------------------- training
def _to_unit(images_uint8: jax.Array) -> jax.Array:
  return images_uint8.astype(jnp.float32) / 255.0


def train_classifier(train: Dataset, test: Dataset, epochs: int = 8,
                     batch_size: int = 128, learning_rate: float = 2e-3,
                     seed: int = 0, log=print) -> Classifier:
  """Trains the CNN on `train` with Adam (learning rate cosine-decayed to 0) and
  cross-entropy; measures `test` accuracy after each epoch (logged) and stores the last.

  Each epoch visits the examples in a fresh `jax.random.permutation` order (the
  remainder batch is dropped); batches are gathered on the device.
  """
  if train.labels is None or test.labels is None:
    raise EvalError(f"dataset {train.name!r} has no labels; a classifier needs them.")
  if train.num_examples < batch_size:
    raise EvalError(f"the classifier's batch size {batch_size} is larger than "
                    f"{train.name!r}'s training split ({train.num_examples} examples).")
  num_classes = max(train.num_classes, test.num_classes)
  module = CNN(num_classes)
  key = jax.random.PRNGKey(seed)
  init_key, key = jax.random.split(key)
  params = module.init(init_key, jnp.zeros((1,) + train.image_shape))["params"]
  per_epoch = train.num_examples // batch_size
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, epochs * per_epoch))
  opt_state = tx.init(params)
  images, labels = jax.device_put(train.images), jax.device_put(train.labels)

  def loss_fn(params, x, y, rng):
    _, logits = module.apply({"params": params}, _to_unit(x), train=True,
                             rngs={"dropout": rng})
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def train_step(params, opt_state, images, labels, order, i, epoch_key):
    idx = jax.lax.dynamic_slice_in_dim(order, i * batch_size, batch_size)
    loss, grads = jax.value_and_grad(loss_fn)(params, images[idx], labels[idx],
                                              jax.random.fold_in(epoch_key, i))
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  meta = {"dataset": train.name, "architecture": ARCHITECTURE,
          "image_shape": list(train.image_shape), "num_classes": num_classes,
          "feature_dim": module.feature_dim, "epochs": epochs,
          "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
          "train_examples": train.num_examples, "test_examples": test.num_examples}
  # The data are arguments, not captured constants, so they are not baked into the
  # compiled program.
  for e in range(epochs):
    t0 = time.perf_counter()
    order_key, epoch_key = jax.random.split(jax.random.fold_in(key, e))
    order = jax.random.permutation(order_key, train.num_examples)
    losses = []
    for i in range(per_epoch):
      params, opt_state, loss = train_step(params, opt_state, images, labels, order, i,
                                           epoch_key)
      losses.append(loss)
    seconds = time.perf_counter() - t0
    test_accuracy = accuracy(Classifier(params, meta), test)
    log(f"classifier epoch {e + 1}/{epochs}: train loss "
        f"{float(jnp.mean(jnp.stack(losses))):.4f}, test accuracy {test_accuracy:.4f} "
        f"({seconds:.1f}s)")

  meta["test_accuracy"] = test_accuracy
  return Classifier(params, meta)


def accuracy(classifier: Classifier, ds: Dataset, batch_size: int = 1000) -> float:
  """Fraction of `ds` whose argmax class equals its label."""
  from jaxgan.eval.features import extract
  _, probs = extract(classifier, ds.images, batch_size)
  return float(np.mean(np.argmax(np.asarray(probs), axis=1) == ds.labels))


# --------------------------------------------------------------------------- save / load
def save_classifier(classifier: Classifier, path: str) -> str:
  """Writes `classifier` to folder `path` (replacing one there); returns the path.

  The folder is written under a temporary name and renamed into place, so a reader
  never finds a half-written classifier.
  """
  path = os.path.abspath(path)
  tmp = f"{path}.tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  import orbax.checkpoint as ocp  # Lazily: importing orbax costs ~0.3 s and ~26 MB.
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(tmp, "params"), classifier.params)
  checkpointer.wait_until_finished()
  checkpointer.close()
  with open(os.path.join(tmp, META_FILE), "w") as f:
    json.dump(classifier.meta, f, indent=2, sort_keys=True)
  shutil.rmtree(path, ignore_errors=True)
  os.replace(tmp, path)
  return path


def load_classifier(path: str, dataset: str | None = None) -> Classifier:
  """Loads the classifier folder `path`; with `dataset`, refuses one trained on another.

  Raises EvalError with the command that makes a missing classifier.
  """
  meta_path = os.path.join(path, META_FILE)
  hint = (f"train one with `python -m jaxgan.classifier --dataset={dataset or 'NAME'} "
          f"[--data_dir=...] --out={path}` (a few CPU-minutes, once per dataset).")
  if not os.path.isfile(meta_path):
    raise EvalError(f"no classifier at {path} (no {META_FILE}); {hint}")
  with open(meta_path) as f:
    meta = json.load(f)
  if meta.get("architecture") != ARCHITECTURE:
    raise EvalError(f"the classifier at {path} has architecture "
                    f"{meta.get('architecture')!r}, this jaxgan expects "
                    f"{ARCHITECTURE!r}; {hint}")
  if dataset is not None and meta["dataset"] != dataset:
    raise EvalError(f"the classifier at {path} was trained on {meta['dataset']!r}, "
                    f"not on {dataset!r}; evaluating {dataset!r} with it would compare "
                    f"meaningless features. {hint}")
  module = CNN(int(meta["num_classes"]), int(meta["feature_dim"]))
  abstract = jax.eval_shape(
      lambda: module.init(jax.random.PRNGKey(0),
                          jnp.zeros((1,) + tuple(meta["image_shape"])))["params"])
  import orbax.checkpoint as ocp
  checkpointer = ocp.StandardCheckpointer()
  params = checkpointer.restore(os.path.join(os.path.abspath(path), "params"), abstract)
  checkpointer.close()
  return Classifier(params, meta)


def find_classifier(dataset: str, classifier_dir: str = "") -> Classifier:
  """The cached classifier for `dataset` in `classifier_dir` ('' = the default cache)."""
  return load_classifier(cache_path(dataset, classifier_dir), dataset)
