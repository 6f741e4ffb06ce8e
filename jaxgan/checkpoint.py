"""Checkpoints of the whole GANState with orbax, in WORKDIR/checkpoints/<step>.

Orbax writes each checkpoint to a temporary folder and renames it into place when it is
complete, so a reader never sees a half-written step folder.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

from jaxgan.state import GANState


class Checkpoints:
  """Save / restore GANState in `directory` (one sub-folder per step)."""

  def __init__(self, directory: str, max_to_keep: int = 3):
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            # Synchronous: the state's buffers are donated to the next step.
            enable_async_checkpointing=False))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, state: GANState) -> int:
    step = int(jax.device_get(state.step))
    if step not in self._manager.all_steps():
      self._manager.save(step, args=ocp.args.StandardSave(state))
      self._manager.wait_until_finished()
    return step

  def restore(self, like: GANState, step: int | None = None) -> GANState:
    """Restores `step` (default: the latest) into the structure and shardings of `like`."""
    step = self.latest_step() if step is None else step
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self._manager.close()
