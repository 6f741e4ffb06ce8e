"""What every command-line program shares: flag parsing and error reporting.

Every input error (a flag, a file, a workdir) is one line `jaxgan: error: ...` on stderr
and exit code 2, with no traceback; a run that stops early (divergence, a stop signal)
prints its message and exits with its own code (jaxgan.errors).
"""

from __future__ import annotations

import logging as std_logging
import os
import sys
from typing import Callable

from absl import app, flags, logging

from jaxgan.errors import EXIT_USAGE, JaxganError, RunStopped

FLAGS = flags.FLAGS


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser (app.run's flags_parser), with its errors (unknown flag, bad value,
  missing flagfile) printed as one line with exit code EXIT_USAGE like every other input
  error. Keeps the whole command line for config.from_flags's run-length rule."""
  global COMMAND_LINE
  COMMAND_LINE = list(argv)
  try:
    return FLAGS(argv)
  except flags.Error as e:
    print(f"jaxgan: error: {e}. See --helpshort for the flags.", file=sys.stderr)
    sys.exit(EXIT_USAGE)


COMMAND_LINE: list[str] = []


def quiet_library_logs() -> None:
  """Drops orbax's INFO chatter (dozens of lines per checkpoint); warnings still show."""

  def keep(record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname

  logging.get_absl_handler().addFilter(keep)


def enable_compilation_cache(path: str) -> None:
  """Turns on JAX's persistent compilation cache in `path` (no-op for '')."""
  if not path:
    return
  import jax
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
  # Cache every program: the train step compiles in seconds on CPU, not minutes.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def run_reporting_errors(body: Callable[[], None]) -> None:
  """Runs `body`; a JaxganError is printed without a traceback and exits 2, a
  RunStopped (Diverged, Preempted) exits with its own code."""
  quiet_library_logs()
  try:
    body()
  except JaxganError as e:
    logging.flush()
    print(f"jaxgan: error: {e}", file=sys.stderr)
    sys.exit(EXIT_USAGE)
  except RunStopped as e:
    logging.flush()
    print(f"jaxgan: {e}", file=sys.stderr)
    sys.exit(e.exit_code)


def run_program(define_flags: Callable[[], None], main: Callable[[list[str]], None]
                ) -> None:
  """Defines a program's flags (once per process) and runs `main` under absl."""
  define_once(define_flags)
  app.run(main, flags_parser=parse_flags)


def define_once(define_flags: Callable[[], None]) -> None:
  """Calls a program's define_flags() unless it ran before in this process (a process
  holds one program's flags: two programs may define a flag of one name differently)."""
  if getattr(define_flags, "defined", False):
    return
  before = set(FLAGS)
  define_flags()
  define_flags.defined = True  # type: ignore[attr-defined]
  # --helpshort lists the flags of the program's main module (the shim run by -m).
  for name in sorted(set(FLAGS) - before):
    FLAGS.register_flag_by_module(sys.argv[0], FLAGS[name])


def no_arguments(argv: list[str]) -> None:
  """Refuses positional arguments: every setting is a --flag=value."""
  if len(argv) > 1:
    raise JaxganError(f"unexpected arguments {argv[1:]}: every setting is a "
                      "--flag=value.")
