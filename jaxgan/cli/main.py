r"""Trains a GAN, or a population of them: flags -> Config -> jaxgan.runtime.loop.run.

    python -m jaxgan.main --flagfile=experiments/mnist.flags --workdir=runs/mnist

Offline, read local IDX files instead of downloading with tfds:

    python -m jaxgan.main --flagfile=experiments/mnist.flags \
        --data_dir=/usr/share/datasets/fashion-mnist --workdir=runs/fm

Every Config field is a flag (jaxgan.config.define_flags); a flag overrides any earlier
setting of it, flagfiles included, and the later of --num_steps / --num_epochs wins.
The flags below are not part of the Config: they say where and how, not what, to run.
"""

from __future__ import annotations

from absl import flags

from jaxgan import config as config_lib
from jaxgan.cli import common
from jaxgan.errors import ConfigError


def define_flags() -> None:
  """The program's flags (defined when it runs, so importing the module defines nothing)."""
  config_lib.define_flags()
  flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics, samples. "
                      "A workdir holding a checkpoint is resumed.")
  flags.DEFINE_bool("restart", False, "Start over in a workdir that holds a run: its "
                    "contents are first moved to WORKDIR.old-<time> (nothing is deleted).")
  flags.DEFINE_string("compilation_cache_dir", "~/.cache/jaxgan/xla",
                      "Persistent XLA compilation cache: a rerun of the same program "
                      "skips compilation. Empty to disable.")
  # Multi-host (jax.distributed).
  flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize before "
                    "training; unset flags below are taken from the environment "
                    "(JAX_COORDINATOR_ADDRESS, or SLURM/TPU/... cluster detection).")
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (implies "
                      "--distributed).")
  flags.DEFINE_integer("num_processes", None, "Number of processes (implies --distributed).")
  flags.DEFINE_integer("process_id", None, "This process's index (implies --distributed).")


FLAGS = flags.FLAGS


def _train(argv: list[str]) -> None:
  common.no_arguments(argv)
  if not FLAGS.workdir:
    raise ConfigError("--workdir is required: a folder for checkpoints, metrics and "
                      "samples (e.g. --workdir=runs/mnist).")
  config = config_lib.from_flags(FLAGS, common.COMMAND_LINE)
  # Every member of a sweep is validated here, before jax.distributed waits for the
  # other processes and before the data is read.
  config_lib.sweep_members(config.validate())
  common.enable_compilation_cache(FLAGS.compilation_cache_dir)
  if FLAGS.distributed or any(FLAGS[name].value is not None for name in
                              ("coordinator_address", "num_processes", "process_id")):
    import jax
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                               num_processes=FLAGS.num_processes,
                               process_id=FLAGS.process_id)
  from jaxgan.runtime import loop  # Imported after the flag checks: jax is slow to load.
  loop.run(config, FLAGS.workdir, restart=FLAGS.restart)


def main(argv: list[str]) -> None:
  common.run_reporting_errors(lambda: _train(argv))


def run() -> None:
  common.run_program(define_flags, main)


if __name__ == "__main__":
  run()
