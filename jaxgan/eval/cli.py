"""Shared bits of the evaluation entry points (jaxgan.classifier, jaxgan.evaluate).

Not jaxgan.main's helpers: importing jaxgan.main would define its flags a second time.
"""

from __future__ import annotations

import logging as std_logging
import sys
from typing import Callable

from absl import logging

from jaxgan.errors import EXIT_USAGE, JaxganError


def quiet_library_logs() -> None:
  """Drops orbax's INFO chatter; warnings still show (as jaxgan.main does)."""

  def keep(record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname

  logging.get_absl_handler().addFilter(keep)


def run_reporting_errors(body: Callable[[], None]) -> None:
  """Runs `body`; a JaxganError is printed without a traceback and exits 2."""
  quiet_library_logs()
  try:
    body()
  except JaxganError as e:
    logging.flush()
    print(f"jaxgan: error: {e}", file=sys.stderr)
    sys.exit(EXIT_USAGE)
