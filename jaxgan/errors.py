"""The project's own error types.

Every problem caused by the user's input (a flag, a file, a workdir) is raised as a
`JaxganError` whose message says what was wrong and what is expected. Entry points catch
it, print the message without a traceback and exit with `EXIT_USAGE`.

A file that cannot be written for lack of space or permission (`WRITE_ERRNOS`) is raised
where it is written as a `WriteError` naming what and where (jaxgan.fileio, the loop's
writers, the checkpoint manager); the training loop turns it into `WriteFailed`, which
adds what was kept and how to resume.
"""

import errno
import os

EXIT_USAGE = 2  # bad flags, bad data, bad workdir: nothing was changed.


class JaxganError(Exception):
  """A problem with the user's input, explained in the message."""


class ConfigError(JaxganError):
  """A flag value or a combination of flags is invalid."""


class DataError(JaxganError):
  """A dataset could not be found, downloaded or parsed."""


class WorkdirError(JaxganError):
  """The workdir cannot be used as asked (foreign checkpoint, lock, ...)."""


# Runs that stop before their last step for a reason outside the user's input. Entry
# points print the message and exit with the class's `exit_code` (documented in
# README.md and docs/reliability.md), so a job scheduler can tell them apart.
EXIT_DIVERGED = 3  # non-finite loss or parameters: stopped, bad state not saved.
EXIT_IO = 74  # a write failed (no space or permission): last checkpoint kept (EX_IOERR).
EXIT_PREEMPTED = 75  # SIGTERM/SIGINT: checkpoint written; rerun to resume (EX_TEMPFAIL).


class RunStopped(Exception):
  """The run stopped early; `exit_code` says why."""

  exit_code = 1


class Diverged(RunStopped):
  """A loss or a parameter became NaN or infinite; nothing of that state was saved."""

  exit_code = EXIT_DIVERGED


class Preempted(RunStopped):
  """A stop signal arrived; the state after the current step was checkpointed."""

  exit_code = EXIT_PREEMPTED


class WriteFailed(RunStopped):
  """A file of the run (checkpoint, metrics, samples, evaluation, results) could not be
  written for lack of space or permission; the last good checkpoint is kept."""

  exit_code = EXIT_IO


# The errors that mean "this file system will not take the write" (as opposed to a bug):
# the user can act on them (free space, fix permissions) and resume.
WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
}


class WriteError(OSError):
  """Writing `what` (e.g. 'the checkpoint of step 200'; '' for the file itself) to
  `filename` failed with one of WRITE_ERRNOS.

  An OSError (`errno`, `filename`), so code that handles OSError still does."""

  def __init__(self, code: int, path: str, what: str = ""):
    super().__init__(code, os.strerror(code), path)
    self.what = what

  @property
  def reason(self) -> str:
    """E.g. 'no space left on the device (ENOSPC)'."""
    name = errno.errorcode.get(self.errno, str(self.errno))
    return f"{WRITE_ERRNOS.get(self.errno, self.strerror)} ({name})"

  def __str__(self) -> str:
    target = f"{self.what} to {self.filename}" if self.what else self.filename
    return f"could not write {target}: {self.reason}"


def as_write_error(error: BaseException, path: str, what: str = ""
                   ) -> "WriteError | None":
  """`error` as a WriteError for `path` if it is an OSError with one of WRITE_ERRNOS
  (a WriteError keeps its own path and what), else None."""
  if isinstance(error, WriteError):
    return error
  if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
    return WriteError(error.errno, path, what)
  return None


class EvalError(JaxganError):
  """Evaluation cannot run as asked (no classifier for the dataset, wrong classifier,
  missing checkpoint step, ...)."""
