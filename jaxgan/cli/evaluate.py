r"""Evaluates a training run's checkpoint: FID, KID, IS, Parzen log-likelihood, modes.

    python -m jaxgan.evaluate --workdir=runs/fm [--step=N]

reads runs/fm/config.json, restores the checkpoint at step N (default: the latest;
--step=0 without a checkpoint: the untrained generator from the run's seed), and writes
runs/fm/eval/step_<N>.json (a sweep's workdir: every member, eval/member_<i>/step_<N>.json). The real-data reference row (the first --eval_num_samples
training images scored as if generated, against the test split) is

    python -m jaxgan.evaluate --workdir=runs/fm --real

which writes runs/fm/eval/real_train.json (a workdir without config.json works too,
given --dataset and --data_dir). Needs the dataset's classifier
(`python -m jaxgan.classifier --dataset=...`).
"""

from __future__ import annotations

import json
import os
import time

from absl import flags

from jaxgan import config as config_lib
from jaxgan.cli import common
from jaxgan.errors import ConfigError

OVERRIDES = ("dataset", "data_dir", "classifier_dir", "eval_num_samples", "eval_parzen")


def define_flags() -> None:
  """The program's flags (defined when it runs, so importing the module defines nothing)."""
  config_lib.define_flags(names=OVERRIDES, as_overrides=True)
  flags.DEFINE_string("workdir", None, "The training run's folder (results go to WORKDIR/eval).")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest; 0: untrained).")
  flags.DEFINE_bool("real", False, "Evaluate real training images instead of a generator: "
                    "the best-achievable reference row.")


FLAGS = flags.FLAGS

SUMMARY_KEYS = ("fid", "kid", "kid_std", "inception_score", "inception_score_std",
                "parzen_ll", "parzen_se", "parzen_sigma", "modes_covered", "mode_kl")


def main(argv: list[str]) -> None:
  common.run_reporting_errors(lambda: _evaluate(argv))


def run() -> None:
  common.run_program(define_flags, main)


def _evaluate(argv: list[str]) -> None:
  common.no_arguments(argv)
  if not FLAGS.workdir:
    raise ConfigError("--workdir is required: the training run to evaluate "
                      "(e.g. --workdir=runs/fm).")
  if FLAGS.real and FLAGS.step is not None:
    raise ConfigError("--real evaluates real images, not a checkpoint: drop --step.")
  from jaxgan import data  # Imported after flag checks: jax start-up is slow.
  from jaxgan.config import Config
  from jaxgan.eval import evaluator as evaluator_lib
  from jaxgan.runtime import evaluation as runs

  overrides = {name: FLAGS[name].value for name in OVERRIDES}
  has_config = os.path.isfile(os.path.join(FLAGS.workdir, "config.json"))
  if FLAGS.real and not has_config:
    config = Config(num_steps=1, **{k: v for k, v in overrides.items() if v is not None})
    config.validate()
  else:
    config = runs.load_run_config(FLAGS.workdir, **overrides)

  t0 = time.perf_counter()
  train = data.hold_out(data.load_dataset(config.dataset, config.data_dir, "train"),
                        config.num_valid)
  evaluator = runs.make_evaluator(config, train)
  setup_s = time.perf_counter() - t0
  if FLAGS.real:
    n = config.eval_num_samples
    if n > train.num_examples:
      raise ConfigError(f"--eval_num_samples={n} is more than the {train.num_examples} "
                        "training images --real can use.")
    results = evaluator.evaluate_images(train.images[:n], seed=config.seed)
    results.update(source=f"real: {config.data_name} train[:{n}]",
                   dataset=config.data_name)
    path = os.path.join(FLAGS.workdir, "eval", "real_train.json")
  elif config.sweep:
    members = runs.evaluate_population_workdir(config, FLAGS.workdir, FLAGS.step,
                                               evaluator)
    for results in members:
      print(json.dumps({"member": results["member"], **results["hparams"],
                        **{k: results.get(k) for k in SUMMARY_KEYS}}))
    print(f"wrote {FLAGS.workdir}/eval/member_<i>/step_{members[0]['step']}.json for "
          f"{len(members)} members, {members[0]['num_samples']} samples each")
    return
  else:
    results = runs.evaluate_workdir(config, FLAGS.workdir, FLAGS.step, evaluator)
    path = runs.results_path(FLAGS.workdir, results["step"])
  results["seconds_setup"] = setup_s
  evaluator_lib.write_results(path, results)
  print(json.dumps({k: results.get(k) for k in SUMMARY_KEYS}))
  print(f"wrote {path}: {results['num_samples']} samples vs {results['num_real']} test "
        f"images; setup {setup_s:.1f}s, FID+KID+IS+modes "
        f"{results['seconds_features_metrics']:.1f}s"
        + (f", Parzen {results['seconds_parzen']:.1f}s" if "seconds_parzen" in results
           else ""))


if __name__ == "__main__":
  run()
