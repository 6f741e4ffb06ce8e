"""Atomic file writes: the one helper every writer of the project uses.

A reader (a resumed run, a user's script, TensorBoard) must never see half a file, and a
kill mid-write must never destroy the previous version. So every file is written to a
temporary sibling and renamed over the target (`os.replace` is atomic on POSIX file
systems); the temporary name is unique per process, so two writers never share one.

A write refused for lack of space or permission (jaxgan.errors.WRITE_ERRNOS) raises
`WriteError` naming the target path (an OSError, so handlers of OSError still catch it):
the training loop reports it in one line (exit code EXIT_IO).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Callable, Iterator

from jaxgan.errors import as_write_error


@contextlib.contextmanager
def writing_to(path: str, what: str = "") -> Iterator[None]:
  """Raises WriteError for `path` (and `what`) from a write in the block that fails for
  lack of space or permission: for writes that append instead of replacing (a log)."""
  try:
    yield
  except OSError as e:
    error = as_write_error(e, path, what)
    if error is None or error is e:
      raise
    raise error from e


def _tmp_path(path: str) -> str:
  # The suffix keeps the file's own extension last: savers that infer the format from
  # the name (matplotlib, PIL) see '.png'.
  head, ext = os.path.splitext(path)
  return f"{head}.tmp-{os.getpid()}{ext}"


@contextlib.contextmanager
def atomic_path(path: str, fsync: bool = False) -> Iterator[str]:
  """Yields a temporary path to write; on success it replaces `path` atomically.

  The parent folder is created. On an exception the temporary file is removed and
  `path` is untouched; a lack of space or permission raises WriteError for `path`.
  fsync: flush the file to disk before the rename (for files whose loss after a power
  cut would lose data, e.g. a rewritten metrics log).
  """
  tmp = _tmp_path(path)
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    yield tmp
    if fsync:
      with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    error = as_write_error(e, path) if isinstance(e, OSError) else None
    if error is not None and error is not e:
      # The OSError of a failed write() names no file; this names the target.
      raise error from e
    raise


def write_text(path: str, text: str, fsync: bool = False) -> None:
  with atomic_path(path, fsync=fsync) as tmp, open(tmp, "w") as f:
    f.write(text)


def write_json(path: str, obj: Any) -> None:
  """`obj` as indented JSON with sorted keys."""
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_with(path: str, save: Callable[[str], None]) -> None:
  """Calls `save(tmp_path)` (e.g. a PIL or matplotlib save), then renames into place."""
  with atomic_path(path) as tmp:
    save(tmp)
