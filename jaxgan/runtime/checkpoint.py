"""Checkpoints of the whole training state with orbax, in WORKDIR/checkpoints/<step>.

Guarantees (docs/reliability.md):
  * Atomic: orbax writes each checkpoint to `<step>.orbax-checkpoint-tmp-*` and renames
    it into place when complete, so a reader never sees a half-written step folder; the
    temporary folders a killed save leaves behind are deleted when the lock holder
    (the training loop, `owner=True`) opens the manager; readers leave them alone.
  * Verified: each save records a CRC-32 fingerprint of every array's bytes in the step's
    metadata (written inside the temporary folder, so atomically with the data). orbax
    itself has no checksum: a flipped byte in a compressed chunk restores silently to
    wrong values. `restore` recomputes the fingerprint and raises `CheckpointCorrupted`
    on any mismatch or read error.
  * A save the file system refuses (no space, quota, permission: errors.WRITE_ERRNOS)
    raises `WriteError` naming the step and the folder, and nothing else: the partial
    step folder is removed (orbax never lists it as a step, and deletes old steps only
    after a save succeeds, so the previous checkpoint stays the latest), orbax's own
    report of the failure (an ERROR log with a traceback from each writer thread) is
    dropped, and so are the stray reports of the writes it abandoned (see
    `_contain_failed_save`).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging as std_logging
import os
import re
import shutil
import sys
import threading
import time
import zlib
from typing import Any, Iterator

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxgan import fileio
from jaxgan.errors import WRITE_ERRNOS, WorkdirError, WriteError
from jaxgan.state import named_leaves

FINGERPRINT_KEY = "jaxgan_state_crc32"


class CheckpointCorrupted(WorkdirError):
  """A checkpoint step folder cannot be read back as it was written. A JaxganError, so
  a command that only reads checkpoints (evaluate) reports it without a traceback."""

  def __init__(self, step: int, reason: str):
    super().__init__(f"checkpoint at step {step} is unreadable: {reason}")
    self.step = step
    self.reason = reason


def _host_array(leaf: Any) -> np.ndarray:
  if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
    # Spread over several processes: every process gathers it (a collective; every
    # process saves and restores, so all of them get here in the same order).
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
  return np.asarray(jax.device_get(leaf))


def fingerprint(state) -> str:
  """CRC-32 (8 hex digits) over every leaf's path, dtype, shape and bytes, in path order."""
  crc = 0
  for name, leaf in sorted(named_leaves(state).items()):
    array = np.ascontiguousarray(_host_array(leaf))
    crc = zlib.crc32(f"{name}:{array.dtype.str}:{array.shape};".encode(), crc)
    crc = zlib.crc32(array.tobytes(), crc)
  return f"{crc:08x}"


class Checkpoints:
  """Save / restore a training state in `directory` (one sub-folder per step)."""

  def __init__(self, directory: str, max_to_keep: int = 3, owner: bool = False):
    """owner: this process holds the workdir lock (the training loop). Only an owner deletes
    the tmp folders of killed saves: a reader (evaluate) might otherwise delete the
    folder of a save that a running trainer is writing."""
    self.directory = os.path.abspath(directory)
    self._max_to_keep = max_to_keep
    self._owner = owner
    with fileio.writing_to(self.directory, "the checkpoint folder"):
      self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    manager = ocp.CheckpointManager(
        self.directory,
        # Registered up front so item_metadata() can read a step before any restore.
        item_handlers=ocp.StandardCheckpointHandler(),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=self._max_to_keep, create=True,
            # A save killed mid-way leaves a tmp folder: removed when we reopen.
            cleanup_tmp_directories=self._owner,
            # Synchronous: the state's buffers are donated to the next step.
            enable_async_checkpointing=False))
    # The tmp-folder cleanup runs in a background thread; wait for it so the folder's
    # contents are settled when we return (orbax itself only waits before a save).
    getattr(manager, "_maybe_await_cleanup_tmp_directory", lambda: None)()
    return manager

  @property
  def owner(self) -> bool:
    """This process holds the workdir lock: it removes partial step folders."""
    return self._owner

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, state: Any, step: int) -> int:
    """Saves `state` as checkpoint `step` (the loop's host step: a population's state
    holds one step counter per member); a step already saved is kept as it is.

    Raises WriteError when the file system refuses the write (errors.WRITE_ERRNOS); the
    partial folder is then removed (by the owner) and the earlier steps are untouched.
    """
    if step not in self._manager.all_steps():
      metadata = {FINGERPRINT_KEY: fingerprint(state)}
      try:
        with _contain_failed_save():
          self._manager.save(step, args=ocp.args.StandardSave(state),
                             custom_metadata=metadata)
          self._manager.wait_until_finished()
      except Exception as e:
        code = write_errno(e)
        if code is None:
          raise
        if self._owner:  # Frees the space the partial write took.
          partial = os.path.join(self.directory, f"{step}.orbax-checkpoint-tmp*")
          for folder in glob.glob(partial):
            shutil.rmtree(folder, ignore_errors=True)
        raise WriteError(code, self.directory, f"the checkpoint of step {step}") from e
    return step

  def shape_mismatches(self, like: Any, step: int) -> list[str]:
    """Arrays whose saved shape/dtype differ from `like`'s ('path: saved vs expected').

    Raises CheckpointCorrupted if the step's metadata cannot be read.
    """
    try:
      saved = self._manager.item_metadata(step)
      saved = named_leaves(dict(getattr(saved, "tree", saved)))
    except Exception as e:  # orbax/tensorstore raise many kinds; all mean unreadable.
      raise CheckpointCorrupted(step, f"{type(e).__name__}: {_first_line(e)}") from None
    expected = {k: (tuple(v.shape), np.dtype(v.dtype))
                for k, v in named_leaves(like).items()}
    got = {k: (tuple(v.shape), np.dtype(v.dtype)) for k, v in saved.items()}
    diffs = []
    for name in sorted(set(expected) | set(got)):
      e, g = expected.get(name), got.get(name)
      if e != g:
        fmt = lambda sd: "absent" if sd is None else f"{sd[1]}{list(sd[0])}"
        diffs.append(f"{name}: saved {fmt(g)} vs expected {fmt(e)}")
    return diffs

  def restore(self, like: Any, step: int | None = None) -> Any:
    """Restores `step` (default: the latest) into the structure and shardings of `like`.

    Raises CheckpointCorrupted if it cannot be read or its fingerprint does not match.
    """
    step = self.latest_step() if step is None else step
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
    meta_path = os.path.join(self.directory, str(step), "_CHECKPOINT_METADATA")
    if not os.path.isfile(meta_path):
      raise CheckpointCorrupted(step, "its _CHECKPOINT_METADATA file is missing")
    try:
      expected = (self._manager.metadata(step).custom_metadata or {}).get(FINGERPRINT_KEY)
      state = self._restore_tree(step, abstract, like)
    except Exception as e:
      raise CheckpointCorrupted(step, f"{type(e).__name__}: {_first_line(e)}") from None
    # Checkpoints written before fingerprints existed are accepted unverified.
    if expected is not None and fingerprint(state) != expected:
      raise CheckpointCorrupted(step, "its arrays do not match the fingerprint written "
                                "with them (bytes changed on disk)")
    return state

  def _restore_tree(self, step: int, abstract: Any, like: Any) -> Any:
    """orbax's restore into `abstract`'s structure. A part of the state that is empty in
    `like` and that the checkpoint does not hold (a field the state gained after the
    checkpoint was written, e.g. GANState.hparams and .aux: {} for a run without
    objective terms that need them) is left out of the restore and put back empty, so
    such a checkpoint still resumes."""
    # orbax's own nested-dict form of the state (what its metadata describes).
    target = ocp.tree.serialize_tree(abstract, keep_empty_nodes=True)
    missing = _empty_parts_missing(target, self._manager.item_metadata(step))
    if not missing:
      return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    for path in missing:
      _drop(target, path)
    restored = self._manager.restore(step, args=ocp.args.StandardRestore(target))
    for path in missing:
      _put_empty(restored, path)
    return ocp.tree.deserialize_tree(restored, like)

  def set_aside(self, step: int, destination: str) -> str:
    """Moves step's folder to `destination`/<step> (nothing is deleted); returns the path."""
    os.makedirs(destination, exist_ok=True)
    target = os.path.join(destination, str(step))
    suffix = 1
    while os.path.exists(target):
      target = os.path.join(destination, f"{step}.{suffix}")
      suffix += 1
    shutil.move(os.path.join(self.directory, str(step)), target)
    # orbax caches the step list (and refuses to save at or below its latest step).
    self._manager.close()
    self._manager = self._open()
    return target

  def close(self) -> None:
    self._manager.close()


def _empty_parts_missing(target: Any, saved: Any, path: tuple = ()) -> list[tuple]:
  """Paths of the empty dicts of `target` (orbax's serialized form of a state) that
  `saved` (the checkpoint's tree metadata) does not hold."""
  if not isinstance(target, dict) or not hasattr(saved, "keys"):
    return []
  out = []
  for key, value in target.items():
    if key not in saved:
      if isinstance(value, dict) and not value:
        out.append(path + (key,))
    else:
      out += _empty_parts_missing(value, saved[key], path + (key,))
  return out


def _drop(tree: dict, path: tuple) -> None:
  for key in path[:-1]:
    tree = tree[key]
  del tree[path[-1]]


def _put_empty(tree: dict, path: tuple) -> None:
  for key in path[:-1]:
    tree = tree[key]
  tree[path[-1]] = {}


# --------------------------------------------------------------------------- failed saves
# tensorstore reports the OS error of a failed write in its message, e.g.
# "RESOURCE_EXHAUSTED: ... No space left on device [os_error_code='28']".
_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")


def write_errno(error: BaseException) -> int | None:
  """The errno (one of errors.WRITE_ERRNOS) of an exception a checkpoint save raised
  (an OSError, or tensorstore's ValueError wrapping one; its causes included), else
  None: anything else is a bug to see in full."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
      return error.errno
    text = str(error)
    match = _OS_ERROR_CODE.search(text)
    if match and int(match.group(1)) in WRITE_ERRNOS:
      return int(match.group(1))
    error = error.__cause__ or error.__context__
  return None


def _from_orbax(record: std_logging.LogRecord) -> bool:
  return f"{os.sep}orbax{os.sep}" in record.pathname


class _HeldOrbaxErrors(std_logging.Filter):
  """Holds back orbax's ERROR records: its writer thread logs the failure it raises
  (with a traceback) before the save returns."""

  def __init__(self):
    super().__init__()
    self.held: list[std_logging.LogRecord] = []

  def filter(self, record: std_logging.LogRecord) -> bool:
    if record.levelno >= std_logging.ERROR and _from_orbax(record):
      self.held.append(record)
      return False
    return True


def _through_orbax(tb: Any) -> bool:
  while tb is not None:
    if f"{os.sep}orbax{os.sep}" in tb.tb_frame.f_code.co_filename:
      return True
    tb = tb.tb_next
  return False


def _abandoned_write(unraisable: Any) -> bool:
  """An error of the writes orbax abandons when one of them fails: it runs them as tasks
  of a private event loop that it closes when the first fails, so each write that
  finishes later fails to wake its task ('Event loop is closed', reported as
  unraisable), and each task's coroutine reports again when it is finalised."""
  if (isinstance(unraisable.exc_value, RuntimeError)
      and str(unraisable.exc_value) == "Event loop is closed"):
    tb = unraisable.exc_traceback
    while tb is not None and tb.tb_next is not None:
      tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename == asyncio.base_events.__file__
  code = getattr(unraisable.object, "cr_code", None)
  return code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename


class _UnretrievedOrbaxFailures(std_logging.Filter):
  """Drops asyncio's 'Future exception was never retrieved' reports of orbax's writes:
  the futures of the writes it abandoned hold their failure, and asyncio reports it
  when they are garbage collected, at the latest when the interpreter exits. Such a
  failure came through orbax's code, or (tensorstore's own futures, which have no
  Python frames) names the temporary folder orbax was writing."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return error is None or not (_through_orbax(error.__traceback__)
                                 or ".orbax-checkpoint-tmp" in str(error))


def _is_ours(hook: Any) -> bool:
  return getattr(hook, "drops_abandoned_orbax_writes", False)


def _drop_abandoned_writes_errors() -> None:
  """Drops the reports of `_abandoned_write`s (a sys.unraisablehook that passes every
  other one to the hook it wraps) and of their unretrieved failures (a filter on
  asyncio's logger). Installed before a save, since the abandoned writes report while
  the save is still failing, and left in place: they report until the interpreter
  exits. Installed again where something replaced the hook (pytest does, per test)."""
  asyncio_logger = std_logging.getLogger("asyncio")
  if not any(isinstance(f, _UnretrievedOrbaxFailures) for f in asyncio_logger.filters):
    asyncio_logger.addFilter(_UnretrievedOrbaxFailures())
  if _is_ours(sys.unraisablehook):
    return
  previous = sys.unraisablehook

  def hook(unraisable: Any) -> None:
    if not _abandoned_write(unraisable):
      previous(unraisable)

  hook.drops_abandoned_orbax_writes = True  # type: ignore[attr-defined]
  sys.unraisablehook = hook


@contextlib.contextmanager
def _contain_failed_save() -> Iterator[None]:
  """Runs an orbax save whose failure the caller reports in one line: orbax's ERROR
  records are held back and re-logged only if the save succeeds, and the stray reports
  of the writes orbax abandons when one fails are dropped."""
  _drop_abandoned_writes_errors()
  logger = std_logging.getLogger("absl")  # orbax logs through absl.logging.
  held = _HeldOrbaxErrors()
  logger.addFilter(held)
  try:
    yield
  except BaseException:
    # Each of orbax's writer threads logs the failure it met; the save raises the first
    # while the others are still ending: wait for them before letting records through.
    _join_orbax_threads(ORBAX_THREADS_TIMEOUT_S)
    raise
  finally:
    logger.removeFilter(held)
  for record in held.held:  # A save that succeeded: nothing is hidden.
    logger.handle(record)


# How long a failed save waits for orbax's other writer threads to end (they fail at
# their next write, so they end within the time of a write).
ORBAX_THREADS_TIMEOUT_S = 30.0


def _join_orbax_threads(timeout_s: float) -> None:
  deadline = time.monotonic() + timeout_s
  for thread in threading.enumerate():
    if (thread is not threading.current_thread()
        and type(thread).__module__.startswith("orbax.")):
      thread.join(max(0.0, deadline - time.monotonic()))


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:300] if text else ""
