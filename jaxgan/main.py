r"""Trains a GAN: flags → Config → train.run.

    python -m jaxgan.main --flagfile=experiments/mnist.flags --workdir=runs/mnist

Offline, read local IDX files instead of downloading with tfds:

    python -m jaxgan.main --flagfile=experiments/mnist.flags \
        --data_dir=/usr/share/datasets/fashion-mnist --workdir=runs/fm
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from jaxgan import config as config_lib
from jaxgan.errors import EXIT_USAGE, JaxganError, RunStopped

_D = config_lib.Config()  # Defaults live in one place: the Config dataclass.

flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics, samples. "
                    "A workdir holding a checkpoint is resumed.")
flags.DEFINE_bool("restart", False, "Start over in a workdir that holds a run: its "
                  "contents are first moved to WORKDIR.old-<time> (nothing is deleted).")
flags.DEFINE_string("dataset", _D.dataset, "tfds dataset name (e.g. mnist, fashion_mnist); "
                    "with --data_dir, just the data's name.")
flags.DEFINE_string("data_dir", _D.data_dir, "Folder with MNIST-format IDX files "
                    "(train-images-idx3-ubyte[.gz], ...); read directly, no download.")
flags.DEFINE_string("model", _D.model, "Model: mlp (PyTorch-GAN gan.py), paper_mlp, "
                    "dcgan (28x28 / 32x32) or toy_mlp (toy_* datasets).")
flags.DEFINE_string("loss", _D.loss, "GAN loss: non_saturating, minimax, lsgan, wgan "
                    "(weight clipping), wgan_gp (gradient penalty) or hinge.")
flags.DEFINE_integer("latent_dim", _D.latent_dim, "Dimension of z.")
flags.DEFINE_integer("num_d_steps", _D.num_d_steps, "k: D updates per G update.")
flags.DEFINE_string("update_order", _D.update_order,
                    "d_then_g (default), g_then_d (PyTorch-GAN) or simultaneous (paper code).")
flags.DEFINE_integer("batch_size", _D.batch_size, "Minibatch size m.")
flags.DEFINE_integer("num_steps", _D.num_steps, "Train steps (k D updates + 1 G update).")
flags.DEFINE_float("num_epochs", _D.num_epochs, "Epochs of real data, if --num_steps=0.")
flags.DEFINE_string("optimizer", _D.optimizer,
                    "adam, sgd (momentum, lr decay) or rmsprop (WGAN).")
flags.DEFINE_float("lr_g", _D.lr_g, "Generator learning rate.")
flags.DEFINE_float("lr_d", _D.lr_d, "Discriminator learning rate.")
flags.DEFINE_float("b1", _D.b1, "Adam beta1.")
flags.DEFINE_float("b2", _D.b2, "Adam beta2.")
flags.DEFINE_float("momentum", _D.momentum, "SGD initial momentum.")
flags.DEFINE_float("final_momentum", _D.final_momentum, "SGD momentum after the ramp.")
flags.DEFINE_integer("momentum_ramp_steps", _D.momentum_ramp_steps,
                     "SGD: updates over which momentum ramps linearly (0 = constant).")
flags.DEFINE_float("lr_decay", _D.lr_decay, "SGD: lr is divided by this after each update.")
flags.DEFINE_float("min_lr", _D.min_lr, "SGD: floor of the decayed learning rate.")
flags.DEFINE_float("label_smoothing", _D.label_smoothing, "One-sided label smoothing: "
                   "D's target for real data is 1 - this (BCE losses only).")
flags.DEFINE_float("gp_weight", _D.gp_weight, "WGAN-GP gradient-penalty weight λ.")
flags.DEFINE_float("clip_value", _D.clip_value, "WGAN weight-clipping bound c.")
flags.DEFINE_bool("feature_matching", _D.feature_matching, "G minimises the distance "
                  "between D's mean features on real and fake data (Salimans et al.).")
flags.DEFINE_integer("minibatch_kernels", _D.minibatch_kernels, "Minibatch "
                     "discrimination kernels B in D's last layer (0 = off).")
flags.DEFINE_integer("minibatch_kernel_dim", _D.minibatch_kernel_dim,
                     "Minibatch discrimination kernel dimension C.")
flags.DEFINE_string("d_norm", _D.d_norm, "dcgan D normalisation: batch, layer or none.")
flags.DEFINE_float("g_ema_decay", _D.g_ema_decay, "Decay of the EMA of G's weights used "
                   "for samples and evaluation (0 = off; e.g. 0.999).")
flags.DEFINE_string("noise", _D.noise, "z distribution: normal or uniform "
                    "(empty = the model's own).")
flags.DEFINE_bool("conditional", _D.conditional, "Class-conditional G and D: both take "
                  "the label as a one-hot input (Mirza & Osindero 2014).")
flags.DEFINE_integer("seed", _D.seed, "Random seed: init, noise and data order.")
flags.DEFINE_integer("log_every", _D.log_every, "Log metrics every N steps (0 = never).")
flags.DEFINE_integer("sample_every", _D.sample_every, "Save a sample grid every N steps.")
flags.DEFINE_integer("checkpoint_every", _D.checkpoint_every,
                     "Checkpoint every N steps (and always at the end).")
flags.DEFINE_integer("sample_grid", _D.sample_grid, "Sample grids are N x N images.")
flags.DEFINE_integer("max_checkpoints", _D.max_checkpoints, "Checkpoints kept.")
flags.DEFINE_integer("steps_per_call", _D.steps_per_call,
                     "Train steps per jit dispatch (lax.scan); same results, less overhead.")

flags.DEFINE_string("compilation_cache_dir", "~/.cache/jaxgan/xla",
                    "Persistent XLA compilation cache: a rerun of the same program "
                    "skips compilation. Empty to disable.")
flags.DEFINE_integer("eval_every", _D.eval_every, "Evaluate (FID, KID, IS, Parzen, modes) "
                     "every N steps (0 = never); needs `python -m jaxgan.classifier` first.")
flags.DEFINE_integer("eval_num_samples", _D.eval_num_samples, "Samples per evaluation.")
flags.DEFINE_bool("eval_parzen", _D.eval_parzen, "Include the Parzen-window estimate.")
flags.DEFINE_string("classifier_dir", _D.classifier_dir, "Evaluation classifier cache "
                    "(default ~/.cache/jaxgan/classifiers).")
flags.DEFINE_multi_string("sweep", list(_D.sweep),
                          "NAME=V1,V2,...: train the cartesian product of all --sweep "
                          "values as one vmapped population (e.g. --sweep=lr_d=1e-4,2e-4 "
                          "--sweep=seed=0,1). Sweepable: seed, lr_g, lr_d, b1, b2 (adam), "
                          "momentum (sgd, no ramp).")
flags.DEFINE_string("sweep_metric", _D.sweep_metric, "Metric that ranks sweep members "
                    "(lower is better); default fid when evaluated, else g_loss.")
flags.DEFINE_string("mesh_shape", _D.mesh_shape, "POP,DATA: devices for sweep members "
                    "and for each batch (product = device count); empty = automatic.")
# Multi-host (jax.distributed); not part of the Config: they say where, not what, to run.
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize before "
                  "training; unset flags below are taken from the environment "
                  "(JAX_COORDINATOR_ADDRESS, or SLURM/TPU/... cluster detection).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (implies "
                    "--distributed).")
flags.DEFINE_integer("num_processes", None, "Number of processes (implies --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index (implies --distributed).")

FLAGS = flags.FLAGS


def enable_compilation_cache(path: str) -> None:
  """Turns on JAX's persistent compilation cache in `path` (no-op for '')."""
  if not path:
    return
  import jax
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
  # Cache every program: the train step compiles in seconds on CPU, not minutes.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def quiet_library_logs() -> None:
  """Drops orbax's INFO chatter (dozens of lines per checkpoint); warnings still show."""
  import logging as std_logging

  def keep(record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname

  logging.get_absl_handler().addFilter(keep)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with its errors (unknown flag, bad value, missing flagfile) printed
  as one line and exit code EXIT_USAGE like every other input error."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    print(f"jaxgan: error: {e}. See --helpshort for the flags.", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def main(argv: list[str]) -> None:
  quiet_library_logs()
  try:
    if len(argv) > 1:
      raise config_lib.ConfigError(
          f"unexpected arguments {argv[1:]}: every setting is a --flag=value.")
    if not FLAGS.workdir:
      raise config_lib.ConfigError("--workdir is required: a folder for checkpoints, "
                                   "metrics and samples (e.g. --workdir=runs/mnist).")
    config = config_lib.from_flags(FLAGS)
    config.validate()  # Before jax.distributed waits for the other processes.
    enable_compilation_cache(FLAGS.compilation_cache_dir)
    distributed = FLAGS.distributed or any(
        FLAGS[name].value is not None
        for name in ("coordinator_address", "num_processes", "process_id"))
    if distributed:
      import jax
      jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                                 num_processes=FLAGS.num_processes,
                                 process_id=FLAGS.process_id)
    if config.sweep or distributed:
      # Several processes always run the population loop (a one-member population when
      # there is no --sweep): it is the loop whose state and batches span all devices.
      from jaxgan import sweep
      sweep.run(config, FLAGS.workdir)
    else:
      from jaxgan import train  # Imported after flag checks: jax start-up is slow.
      train.run(config, FLAGS.workdir, restart=FLAGS.restart)
  except JaxganError as e:
    logging.flush()
    print(f"jaxgan: error: {e}", file=sys.stderr)
    sys.exit(EXIT_USAGE)
  except RunStopped as e:  # Diverged (exit 3), Preempted (exit 75): see errors.py.
    logging.flush()
    print(f"jaxgan: {e}", file=sys.stderr)
    sys.exit(e.exit_code)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
