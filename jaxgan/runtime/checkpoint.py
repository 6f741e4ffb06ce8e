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
"""

from __future__ import annotations

import os
import shutil
import zlib
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxgan.errors import WorkdirError
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

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, state: Any, step: int) -> int:
    """Saves `state` as checkpoint `step` (the loop's host step: a population's state
    holds one step counter per member); a step already saved is kept as it is."""
    if step not in self._manager.all_steps():
      self._manager.save(step, args=ocp.args.StandardSave(state),
                         custom_metadata={FINGERPRINT_KEY: fingerprint(state)})
      self._manager.wait_until_finished()
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
      state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:
      raise CheckpointCorrupted(step, f"{type(e).__name__}: {_first_line(e)}") from None
    # Checkpoints written before fingerprints existed are accepted unverified.
    if expected is not None and fingerprint(state) != expected:
      raise CheckpointCorrupted(step, "its arrays do not match the fingerprint written "
                                "with them (bytes changed on disk)")
    return state

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


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:300] if text else ""
