"""Run guards: stop signals (preemption) and the divergence check.

`RunGuard` owns what a run holds for its lifetime — the workdir lock, SIGTERM/SIGINT
handlers, open writers — and gives them back on every exit path (normal end, error,
divergence, preemption). The training loop makes one and calls into it:

    guard.check_finite(step, state, metrics)   # before anything of `step` is written
    if guard.stop_requested: save, then guard.raise_preempted(step)

Guarantees (docs/reliability.md):
  * Preemption: a SIGTERM or SIGINT lets the current step (or jit dispatch) finish; the
    loop then checkpoints and raises `Preempted` (exit code EXIT_PREEMPTED = 75). A second
    signal acts at once (the previous handlers are put back by the first), so Ctrl-C
    twice still kills a run; a run killed that way resumes from its last checkpoint.
  * Divergence: `check_finite` raises `Diverged` (exit code EXIT_DIVERGED = 3) naming the
    step and every non-finite loss and array; the loop calls it before each log line,
    sample grid and checkpoint, so a NaN state is never saved.
  * Releases: on an error every held resource is still released, and the run's own
    error is the one raised: a release that fails too (a writer flushing onto the
    same full disk) does not replace it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxgan.errors import Diverged, Preempted, WriteError
from jaxgan.state import named_leaves

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@jax.jit
def _finite_leaves(tree: Any) -> Any:
  """A tree of bool scalars: is each floating leaf free of NaN and Inf."""
  return jax.tree.map(
      lambda x: jnp.all(jnp.isfinite(x)) if jnp.issubdtype(x.dtype, jnp.inexact)
      else jnp.bool_(True), tree)


def nonfinite_arrays(tree: Any) -> list[str]:
  """Paths ('g/params/Dense_0/kernel') of the floating arrays in `tree` holding NaN/Inf.

  One small jitted reduction per array; only the booleans leave the device.
  """
  flags = jax.device_get(_finite_leaves(tree))
  return [name for name, ok in sorted(named_leaves(flags).items()) if not bool(ok)]


def check_finite(step: int, state: Any, metrics: Mapping[str, Any] | None = None,
                 last_good_step: int | None = None) -> None:
  """Raises Diverged if a metric or an array of `state` (params, BatchNorm statistics,
  optimizer state of G and D) is NaN or infinite after `step`.

  metrics: name -> scalar or array (e.g. stacked over several steps per dispatch).
  """
  bad = []
  for name, value in sorted((metrics or {}).items()):
    value = np.asarray(jax.device_get(value))
    if np.issubdtype(value.dtype, np.inexact) and not np.all(np.isfinite(value)):
      shown = value if value.ndim == 0 else value[~np.isfinite(value)][0]
      bad.append(f"loss/metric {name} = {shown}")
  # Grouped by network and kind ('g/params', 'd/opt_state', ...), params first.
  groups: dict[str, list[str]] = {}
  for name in nonfinite_arrays({"g": state.g, "d": state.d}):
    groups.setdefault("/".join(name.split("/")[:2]), []).append(name)
  for group in sorted(groups, key=lambda g: ("params" not in g, g)):
    names = groups[group]
    bad.append(f"non-finite {group}: {len(names)} array{'s' * (len(names) > 1)}, "
               f"e.g. {names[0]}")
  if bad:
    kept = ("no checkpoint was written yet" if last_good_step is None else
            f"the last good checkpoint (step {last_good_step}) is kept")
    raise Diverged(
        f"training diverged at step {step}: " + "; ".join(bad) + ". This state was not "
        f"saved; {kept}. Lower the learning rates (--lr_g, --lr_d) or change --loss, "
        "then resume or --restart.")


class RunGuard:
  """Holds a run's lock, stop-signal handlers and writers; `close()` releases them all."""

  def __init__(self):
    self._stack = contextlib.ExitStack()
    self._previous_handlers: dict[int, Any] = {}
    self.received_signal: int | None = None

  # -------------------------------------------------------------- resources
  def hold(self, resource: Any) -> Any:
    """Registers `resource.close()` (or `.release()`) to run when the guard closes."""
    self._stack.callback(getattr(resource, "release", None) or resource.close)
    return resource

  def close(self) -> None:
    """Puts the signal handlers back, then closes what `hold` got, newest first."""
    self._restore_handlers()
    self._stack.close()

  def __enter__(self) -> "RunGuard":
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    if exc is None:
      self.close()
      return
    # The run is already failing: that error is the one to report. A release that
    # fails too is not raised in its place: a write error then is the same full disk or
    # missing permission again (closing the TensorBoard file flushes what it holds), and
    # anything else is logged.
    try:
      self.close()
    except WriteError:
      pass
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("Also failed while releasing the run's resources: %s", e)

  # -------------------------------------------------------------- signals
  def catch_stop_signals(self) -> None:
    """From now on SIGTERM/SIGINT request a stop instead of killing the process.

    Only the main thread may install handlers; elsewhere (a notebook worker thread)
    signals keep their default effect.
    """
    if threading.current_thread() is not threading.main_thread():
      return
    for signum in STOP_SIGNALS:
      self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

  def _on_signal(self, signum: int, frame: Any) -> None:
    del frame
    self.received_signal = signum
    self._restore_handlers()  # A second signal takes the default way out.
    logging.warning("Received %s: finishing the current step, then checkpointing and "
                    "exiting (send it again to stop at once).", signal.Signals(signum).name)

  def _restore_handlers(self) -> None:
    for signum, handler in self._previous_handlers.items():
      signal.signal(signum, handler)
    self._previous_handlers = {}

  @property
  def stop_requested(self) -> bool:
    return self.received_signal is not None

  def raise_preempted(self, step: int, checkpoint_dir: str) -> None:
    name = signal.Signals(self.received_signal).name if self.stop_requested else "a signal"
    raise Preempted(f"stopped by {name} after step {step}; the state is checkpointed in "
                    f"{checkpoint_dir}. Run the same command again to resume.")
