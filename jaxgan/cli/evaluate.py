r"""Evaluates a training run's checkpoint: FID, KID, IS, Parzen log-likelihood, modes.

    python -m jaxgan.evaluate --workdir=runs/fm [--step=N]

reads runs/fm/config.json, restores the checkpoint at step N (default: the latest;
--step=0 without a checkpoint: the untrained generator from the run's seed), and writes
runs/fm/eval/step_<N>.json (a sweep's workdir: every member, eval/member_<i>/step_<N>.json). The real-data reference row (the first --eval_num_samples
training images scored as if generated, against the test split) is

    python -m jaxgan.evaluate --workdir=runs/fm --real

which writes runs/fm/eval/real_train.json (a workdir without config.json works too,
given --dataset and --data_dir). Any generator's samples, saved as an array or as PNG
files, are scored the same way (same classifier, features, test split and metrics):

    python -m jaxgan.evaluate --samples=samples.npy --samples_range=-1,1 \
        --dataset=mnist [--data_dir=...] [--out=DIR]

reads a .npy/.npz array ([N, H, W, C], [N, H, W] or PyTorch's [N, C, H, W]; uint8, or
float with --samples_range) or a folder of .png files (jaxgan.eval.samples has the
rules) and writes DIR/<name>_eval.json (DIR: the folder holding --samples). Needs the
dataset's classifier (`python -m jaxgan.classifier --dataset=...`).
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
  flags.DEFINE_string("samples", None, "Evaluate these samples instead of a workdir: a "
                      ".npy/.npz array ([N,H,W,C], [N,H,W] or [N,C,H,W]; uint8, or float "
                      "with --samples_range) or a folder of .png files. Needs --dataset "
                      "or --data_dir.")
  flags.DEFINE_string("samples_range", None, "LO,HI: the value range of float --samples "
                      "(-1,1 for a tanh generator, 0,1 for a sigmoid one).")
  flags.DEFINE_string("samples_key", None, "The array of an .npz --samples that holds "
                      "several.")
  flags.DEFINE_string("out", None, "Folder for the results of --samples (default: the "
                      "folder holding --samples): OUT/<name>_eval.json.")


FLAGS = flags.FLAGS

SUMMARY_KEYS = ("fid", "kid", "kid_std", "inception_score", "inception_score_std",
                "parzen_ll", "parzen_se", "parzen_sigma", "modes_covered", "mode_kl",
                "precision", "recall", "density", "coverage")


def main(argv: list[str]) -> None:
  common.run_reporting_errors(lambda: _evaluate(argv))


def run() -> None:
  common.run_program(define_flags, main)


def _evaluate(argv: list[str]) -> None:
  common.no_arguments(argv)
  if FLAGS.samples is not None:
    return _evaluate_samples()
  for name in ("samples_range", "samples_key", "out"):
    if FLAGS[name].present:
      raise ConfigError(f"--{name} applies to --samples; a workdir's results go to "
                        "WORKDIR/eval.")
  if not FLAGS.workdir:
    raise ConfigError("--workdir is required: the training run to evaluate "
                      "(e.g. --workdir=runs/fm), or --samples=PATH for samples saved "
                      "as an array or PNG files.")
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
  full = data.load_dataset(config.dataset, config.data_dir, "train")
  train = data.hold_out(full, config.num_valid)
  # A workdir's Parzen sigma is chosen where its training evaluation chose it (a
  # --train_subset run without --num_valid: among the subset's images).
  evaluator = runs.make_evaluator(
      config, train if FLAGS.real else data.load_training_split(config, full))
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


def samples_results_path(samples: str, out: str | None) -> str:
  """OUT/<name>_eval.json: name = the file's name without extension, or the folder's."""
  samples = os.path.normpath(samples)
  name = os.path.basename(samples)
  if not os.path.isdir(samples):
    name = os.path.splitext(name)[0]
  return os.path.join(out if out else os.path.dirname(samples), f"{name}_eval.json")


def _evaluate_samples() -> None:
  """--samples: checks every flag and the file before the slow work (data, features)."""
  for name in ("workdir", "step", "real"):
    if FLAGS[name].present:
      raise ConfigError(f"--samples evaluates the samples in a file or folder: drop "
                        f"--{name} (a workdir is evaluated with --workdir alone).")
  if FLAGS.dataset is None and FLAGS.data_dir is None:
    raise ConfigError("--samples needs the dataset the samples imitate: --dataset=NAME "
                      "(e.g. mnist, fashion_mnist) or --data_dir=FOLDER of IDX files; "
                      "its classifier, test split and Parzen images are used.")
  if FLAGS.samples_key is not None and not FLAGS.samples.lower().endswith(".npz"):
    raise ConfigError(f"--samples_key names an array of an .npz file; --samples="
                      f"{FLAGS.samples!r} is not one.")
  if FLAGS.eval_num_samples is not None and FLAGS.eval_num_samples < 1:
    raise ConfigError(f"--eval_num_samples={FLAGS.eval_num_samples}: expected a positive "
                      "number of samples (default: all of --samples).")
  if not os.path.exists(FLAGS.samples):
    raise ConfigError(f"--samples={FLAGS.samples!r}: no such file or folder; expected a "
                      ".npy or .npz array or a folder of .png files.")
  from jaxgan.config import Config
  from jaxgan.eval import samples as samples_lib
  value_range = (samples_lib.parse_range(FLAGS.samples_range)
                 if FLAGS.samples_range is not None else None)
  out_path = samples_results_path(FLAGS.samples, FLAGS.out)
  if FLAGS.out and os.path.exists(FLAGS.out) and not os.path.isdir(FLAGS.out):
    raise ConfigError(f"--out={FLAGS.out!r} is a file; expected a folder for the "
                      "results.")
  overrides = {name: FLAGS[name].value for name in OVERRIDES
               if name != "eval_num_samples" and FLAGS[name].value is not None}
  config = Config(num_steps=1, **overrides).validate()

  # Imported after the flag checks: jax start-up is slow.
  from jaxgan.eval import evaluator as evaluator_lib
  from jaxgan.eval.classifier import find_classifier
  from jaxgan.runtime import evaluation as runs

  t0 = time.perf_counter()
  # The classifier first: a dataset without one (or an unknown name) fails in a second.
  extractor = find_classifier(config.data_name, config.classifier_dir)
  images, info = samples_lib.load_samples(FLAGS.samples, tuple(extractor.image_shape),
                                          value_range, FLAGS.samples_key)
  n = FLAGS.eval_num_samples or images.shape[0]
  if n > images.shape[0]:
    raise ConfigError(f"--eval_num_samples={n} is more than the {images.shape[0]} "
                      f"samples in --samples={FLAGS.samples!r}.")
  if n < evaluator_lib.MIN_SAMPLES:
    raise ConfigError(f"--samples={FLAGS.samples!r}: {n} samples are too few; expected "
                      f"at least {evaluator_lib.MIN_SAMPLES} (and thousands for FID and "
                      "KID: 10,000 as for checkpoints).")
  images = images[:n]
  evaluator = runs.make_evaluator(config, extractor=extractor)
  setup_s = time.perf_counter() - t0
  results = evaluator.evaluate_images(images, seed=config.seed)
  results.update(source=os.path.abspath(FLAGS.samples), dataset=config.data_name,
                 samples=info, seconds_setup=setup_s)
  evaluator_lib.write_results(out_path, results)
  print(json.dumps({k: results.get(k) for k in SUMMARY_KEYS}))
  print(f"wrote {out_path}: {n} samples ({info['format']}, {info['layout']}, "
        f"{info['dtype']} in {info['range']}) vs {results['num_real']} test images")


if __name__ == "__main__":
  run()
