r"""Trains the evaluation classifier for a dataset and stores it in the cache.

    python -m jaxgan.classifier --dataset=fashion_mnist \
        --data_dir=/usr/share/datasets/fashion-mnist

writes <classifier_dir>/<dataset>/ (default ~/.cache/jaxgan/classifiers/fashion_mnist),
where `python -m jaxgan.evaluate` and `--eval_every` find it; `--out` writes elsewhere.
Prints the test accuracy, which is also stored in classifier.json.
"""

from __future__ import annotations

import time

from absl import app, flags, logging

from jaxgan.errors import ConfigError
from jaxgan.eval.cli import run_reporting_errors

flags.DEFINE_string("dataset", "mnist", "tfds dataset name; with --data_dir, the data's name "
                    "(the cache key: evaluation of --dataset=X looks for X).")
flags.DEFINE_string("data_dir", "", "Folder with MNIST-format IDX files (no download).")
flags.DEFINE_string("classifier_dir", "", "Classifier cache folder "
                    "(default $XDG_CACHE_HOME/jaxgan/classifiers = ~/.cache/jaxgan/classifiers).")
flags.DEFINE_string("out", "", "Output folder (default <classifier_dir>/<dataset>).")
flags.DEFINE_integer("epochs", 8, "Training epochs.")
flags.DEFINE_integer("batch_size", 128, "Minibatch size.")
flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate (cosine-decayed to 0).")
flags.DEFINE_integer("seed", 0, "Random seed (init, order, dropout).")

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  run_reporting_errors(_train)


def _train() -> None:
  if FLAGS.epochs < 1 or FLAGS.batch_size < 1 or not FLAGS.learning_rate > 0:
    raise ConfigError("--epochs and --batch_size must be integers >= 1 and "
                      "--learning_rate a number > 0.")
  from jaxgan import data  # Imported after flag checks: jax start-up is slow.
  from jaxgan.eval import classifier as clf
  data.check_dataset_name(FLAGS.dataset)
  out = FLAGS.out or clf.cache_path(FLAGS.dataset, FLAGS.classifier_dir)
  train = data.load_dataset(FLAGS.dataset, FLAGS.data_dir, "train")
  test = data.load_dataset(FLAGS.dataset, FLAGS.data_dir, "test")
  t0 = time.perf_counter()
  model = clf.train_classifier(train, test, epochs=FLAGS.epochs,
                               batch_size=FLAGS.batch_size,
                               learning_rate=FLAGS.learning_rate, seed=FLAGS.seed,
                               log=logging.info)
  path = clf.save_classifier(model, out)
  print(f"classifier for {FLAGS.dataset}: test accuracy {model.accuracy:.4f} "
        f"({test.num_examples} test images), trained in "
        f"{time.perf_counter() - t0:.0f}s; saved to {path}")


if __name__ == "__main__":
  app.run(main)
