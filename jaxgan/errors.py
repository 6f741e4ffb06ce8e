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


class EvalError(JaxganError):
  """Evaluation cannot run as asked (no classifier for the dataset, wrong classifier,
  missing checkpoint step, ...)."""
