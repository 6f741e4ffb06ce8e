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
import sys
import time

import numpy as np
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
  flags.DEFINE_enum("feature_network", "classifier", ["classifier", "inception"],
                    "The network the metrics are computed on: the dataset's own "
                    "classifier, or the FID Inception network of pytorch-fid (published "
                    "FIDs; needs --inception_weights).")
  flags.DEFINE_string("inception_weights", None, "pytorch-fid's weights file "
                      "pt_inception-2015-12-05-6726825d.pth (read without torch; its "
                      "sha256 is checked against the hash in its name).")
  flags.DEFINE_string("save_stats", None, "With --feature_network=inception: write the "
                      "features' mu and sigma to this .npz (pytorch-fid's --save-stats "
                      "format), of --samples, or of a dataset's --split.")
  flags.DEFINE_string("ref_stats", None, "With --feature_network=inception and --samples: "
                      "the FID reference, an .npz of mu and sigma (from --save_stats or "
                      "pytorch-fid's --save-stats).")
  flags.DEFINE_enum("split", None, ["train", "test"], "With --save_stats and no "
                    "--samples: the dataset split whose statistics are written.")


FLAGS = flags.FLAGS

SUMMARY_KEYS = ("fid", "kid", "kid_std", "inception_score", "inception_score_std",
                "parzen_ll", "parzen_se", "parzen_sigma", "modes_covered", "mode_kl",
                "precision", "recall", "density", "coverage")


def _first_samples(images: np.ndarray, minimum: int, advice: str) -> np.ndarray:
  """The first --eval_num_samples of `images` (all when 0); ConfigError naming the flag
  when there are fewer, or when that leaves fewer than `minimum`."""
  n = FLAGS.eval_num_samples or images.shape[0]
  if n > images.shape[0]:
    raise ConfigError(f"--eval_num_samples={n} is more than the {images.shape[0]} "
                      f"samples in --samples={FLAGS.samples!r}.")
  if n < minimum:
    many = "sample is" if n == 1 else "samples are"
    raise ConfigError(f"--samples={FLAGS.samples!r}: {n} {many} too few; expected at "
                      f"least {minimum} ({advice}).")
  return images[:n]


def main(argv: list[str]) -> None:
  common.run_reporting_errors(lambda: _evaluate(argv))


def run() -> None:
  common.run_program(define_flags, main)


def _evaluate(argv: list[str]) -> None:
  common.no_arguments(argv)
  if FLAGS.feature_network == "inception":
    return _evaluate_inception()
  for name in ("inception_weights", "save_stats", "ref_stats", "split"):
    if FLAGS[name].present:
      raise ConfigError(f"--{name} applies to --feature_network=inception (the FID "
                        "Inception network); add that flag, or drop this one.")
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
  images = _first_samples(images, evaluator_lib.MIN_SAMPLES,
                          "thousands for FID and KID: 10,000 as for checkpoints")
  n = images.shape[0]
  evaluator = runs.make_evaluator(config, extractor=extractor)
  setup_s = time.perf_counter() - t0
  results = evaluator.evaluate_images(images, seed=config.seed)
  results.update(source=os.path.abspath(FLAGS.samples), dataset=config.data_name,
                 samples=info, seconds_setup=setup_s)
  evaluator_lib.write_results(out_path, results)
  print(json.dumps({k: results.get(k) for k in SUMMARY_KEYS}))
  print(f"wrote {out_path}: {n} samples ({info['format']}, {info['layout']}, "
        f"{info['dtype']} in {info['range']}) vs {results['num_real']} test images")


def _inception_checks() -> None:
  """Every --feature_network=inception flag and file name, before the slow work."""
  if FLAGS.inception_weights is None:
    raise ConfigError("--feature_network=inception needs --inception_weights=PATH: "
                      "pytorch-fid's pt_inception-2015-12-05-6726825d.pth (docs/"
                      "evaluation.md says where to get it).")
  if FLAGS.workdir is not None or FLAGS.real or FLAGS.step is not None:
    raise ConfigError("--feature_network=inception evaluates --samples, or writes a "
                      "split's --save_stats; a workdir is evaluated on the network its "
                      "run names (--feature_network in its config.json), or write its "
                      "samples (python -m jaxgan.sample) and pass them as --samples.")
  for name in ("save_stats", "ref_stats"):
    value = FLAGS[name].value
    if value is not None and not value.lower().endswith(".npz"):
      raise ConfigError(f"--{name}={value!r}: expected an .npz file (mu and sigma).")
  if FLAGS.samples is None:
    for name in ("ref_stats", "samples_range", "samples_key", "out"):
      if FLAGS[name].present:
        raise ConfigError(f"--{name} applies to --samples.")
    if FLAGS.save_stats is None or (FLAGS.dataset is None and FLAGS.data_dir is None):
      raise ConfigError("--feature_network=inception needs --samples=PATH (samples to "
                        "score), or --save_stats=OUT.npz with --dataset or --data_dir "
                        "and --split (a dataset's reference statistics).")
    if FLAGS.split is None:
      raise ConfigError("--save_stats of a dataset needs --split=train or --split=test.")
    return
  if FLAGS.split is not None:
    raise ConfigError("--split applies to a dataset's --save_stats; with --samples the "
                      "reference is --ref_stats or the --dataset's test split.")
  if FLAGS.ref_stats is None and FLAGS.save_stats is None and (
      FLAGS.dataset is None and FLAGS.data_dir is None):
    raise ConfigError("--samples with --feature_network=inception needs a reference: "
                      "--ref_stats=FILE.npz, or --dataset/--data_dir (its test split); "
                      "or --save_stats=OUT.npz alone to write the samples' statistics.")
  if FLAGS.ref_stats is not None and not os.path.isfile(FLAGS.ref_stats):
    raise ConfigError(f"--ref_stats={FLAGS.ref_stats!r}: no such file; expected an .npz "
                      "with mu and sigma.")
  if not os.path.exists(FLAGS.samples):
    raise ConfigError(f"--samples={FLAGS.samples!r}: no such file or folder; expected a "
                      ".npy or .npz array or a folder of .png files.")
  if FLAGS.eval_num_samples is not None and FLAGS.eval_num_samples < 1:
    raise ConfigError(f"--eval_num_samples={FLAGS.eval_num_samples}: expected a positive "
                      "number of samples (default: all of --samples).")


def _load_inception():
  """The extractor of --inception_weights; a NonStandardWeights warning as one line."""
  import warnings

  from jaxgan.eval import inception
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", inception.NonStandardWeights)
    extractor = inception.InceptionExtractor.from_file(FLAGS.inception_weights)
  for w in caught:
    print(f"warning: {w.message}", file=sys.stderr)
  return extractor


def _evaluate_inception() -> None:
  """--feature_network=inception: pytorch-fid's network, statistics and FID."""
  _inception_checks()
  from jaxgan.config import Config
  from jaxgan.eval import features as features_lib
  from jaxgan.eval import samples as samples_lib
  from jaxgan.eval import stats as stats_lib

  overrides = {name: FLAGS[name].value for name in ("dataset", "data_dir")
               if FLAGS[name].value is not None}
  config = Config(num_steps=1, **overrides).validate() if overrides else None
  value_range = (samples_lib.parse_range(FLAGS.samples_range)
                 if FLAGS.samples_range is not None else None)
  t0 = time.perf_counter()
  extractor = _load_inception()
  protocol = extractor.protocol()
  if FLAGS.samples is None:  # A dataset split's reference statistics.
    from jaxgan import data
    split = data.load_dataset(config.dataset, config.data_dir, FLAGS.split)
    images = split.images[:FLAGS.eval_num_samples or split.num_examples]
    feats, _ = features_lib.extract(extractor, images)
    mu, sigma = stats_lib.feature_stats(feats)
    stats_lib.save_stats(FLAGS.save_stats, mu, sigma, images.shape[0], extractor.sha256,
                         protocol["network"])
    print(f"wrote {FLAGS.save_stats}: mu [{mu.shape[0]}] and sigma of "
          f"{images.shape[0]} {config.data_name} {FLAGS.split} images "
          f"({time.perf_counter() - t0:.1f}s)")
    return
  reference = None
  if FLAGS.ref_stats is not None:
    reference = stats_lib.load_stats(FLAGS.ref_stats, extractor.feature_dim,
                                     weights_sha256=extractor.sha256)
  images, info = samples_lib.load_samples(FLAGS.samples, None, value_range,
                                          FLAGS.samples_key)
  images = _first_samples(images, stats_lib.MIN_SAMPLES,
                          "thousands for FID: 10,000 or 50,000 in papers")
  n = images.shape[0]
  feats, probs = features_lib.extract(extractor, images)
  feats = np.asarray(feats)
  mu, sigma = stats_lib.feature_stats(feats)
  if FLAGS.save_stats is not None:
    stats_lib.save_stats(FLAGS.save_stats, mu, sigma, n, extractor.sha256,
                         protocol["network"])
    print(f"wrote {FLAGS.save_stats}: mu [{mu.shape[0]}] and sigma of {n} samples")
  real_features = None
  if reference is not None:
    protocol["reference"] = {"stats": os.path.abspath(FLAGS.ref_stats),
                             "num_samples": reference.num_samples}
  elif config is not None:
    from jaxgan import data
    test = data.load_dataset(config.dataset, config.data_dir, "test")
    features_lib.check_compatible(extractor, test.name, test.image_shape)
    real_features, _ = features_lib.extract(extractor, test.images)
    reference = stats_lib.Stats(*stats_lib.feature_stats(real_features),
                                test.num_examples, extractor.sha256)
    protocol["reference"] = {"split": f"{config.data_name} test",
                             "num_samples": test.num_examples}
  else:
    return  # --save_stats alone: the statistics are the result.
  results = stats_lib.score(feats, probs, reference, real_features,
                            seed=config.seed if config else 0)
  results.update(source=os.path.abspath(FLAGS.samples), samples=info,
                 feature_network="inception", protocol=protocol,
                 seconds=time.perf_counter() - t0)
  out_path = samples_results_path(FLAGS.samples, FLAGS.out)
  from jaxgan.eval import evaluator as evaluator_lib
  evaluator_lib.write_results(out_path, results)
  print(json.dumps({k: results.get(k) for k in SUMMARY_KEYS if k in results}))
  print(f"wrote {out_path}: FID {results['fid']:.6g} of {n} samples ({info['format']}, "
        f"{info['layout']}) vs {protocol['reference']}")


if __name__ == "__main__":
  run()
