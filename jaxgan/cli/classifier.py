r"""Trains the evaluation classifier for a dataset and stores it in the cache.

    python -m jaxgan.classifier --dataset=fashion_mnist \
        --data_dir=/usr/share/datasets/fashion-mnist

writes <classifier_dir>/<data name>/ (default ~/.cache/jaxgan/classifiers/fashion_mnist:
the data is named after its --data_dir folder), where `python -m jaxgan.evaluate` and
`--eval_every` find it; `--out` writes elsewhere.
Prints the test accuracy, which is also stored in classifier.json.
"""

from __future__ import annotations

import time

from absl import flags, logging

from jaxgan import config as config_lib
from jaxgan.cli import common
from jaxgan.errors import ConfigError

# The data flags are the training flags: the cache key is the data's own name (the
# --data_dir folder's, else --dataset), the name evaluation of a run looks up.


def define_flags() -> None:
  """The program's flags (defined when it runs, so importing the module defines nothing)."""
  config_lib.define_flags(names=("dataset", "data_dir", "classifier_dir"))
  flags.DEFINE_string("out", "", "Output folder (default <classifier_dir>/<data name>).")
  flags.DEFINE_integer("epochs", 8, "Training epochs.")
  flags.DEFINE_integer("batch_size", 128, "Minibatch size.")
  flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate (cosine-decayed to 0).")
  flags.DEFINE_integer("seed", 0, "Random seed (init, order, dropout).")


FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
  common.run_reporting_errors(lambda: _train(argv))


def run() -> None:
  common.run_program(define_flags, main)


def _train(argv: list[str]) -> None:
  common.no_arguments(argv)
  if FLAGS.epochs < 1 or FLAGS.batch_size < 1 or not FLAGS.learning_rate > 0:
    raise ConfigError("--epochs and --batch_size must be integers >= 1 and "
                      "--learning_rate a number > 0.")
  from jaxgan import data  # Imported after flag checks: jax start-up is slow.
  from jaxgan.eval import classifier as clf
  if not FLAGS.data_dir:
    data.check_dataset_name(FLAGS.dataset)
  name = data.data_name(FLAGS.dataset, FLAGS.data_dir)
  out = FLAGS.out or clf.cache_path(name, FLAGS.classifier_dir)
  train = data.load_dataset(FLAGS.dataset, FLAGS.data_dir, "train")
  test = data.load_dataset(FLAGS.dataset, FLAGS.data_dir, "test")
  t0 = time.perf_counter()
  model = clf.train_classifier(train, test, epochs=FLAGS.epochs,
                               batch_size=FLAGS.batch_size,
                               learning_rate=FLAGS.learning_rate, seed=FLAGS.seed,
                               log=logging.info)
  path = clf.save_classifier(model, out)
  print(f"classifier for {name}: test accuracy {model.accuracy:.4f} "
        f"({test.num_examples} test images), trained in "
        f"{time.perf_counter() - t0:.0f}s; saved to {path}")


if __name__ == "__main__":
  run()
