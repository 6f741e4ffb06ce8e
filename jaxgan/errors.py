"""The project's own error type.

Every problem caused by the user's input (a flag, a file, a workdir) is raised as a
`JaxganError` whose message says what was wrong and what is expected. Entry points catch
it, print the message without a traceback and exit with `EXIT_USAGE`.
"""

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
# WORKSPACE.md, "Reliability"), so a job scheduler can tell them apart.
EXIT_DIVERGED = 3  # non-finite loss or parameters: stopped, bad state not saved.
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


class EvalError(JaxganError):
  """Evaluation cannot run as asked (no classifier for the dataset, wrong classifier,
  missing checkpoint step, ...)."""
