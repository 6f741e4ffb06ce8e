"""Workdir safety: one run per workdir, resume only what matches, restart without loss.

Called by the training loop, in this order, before anything in the workdir is changed:
  1. `WorkdirLock.check_free` — refuse a workdir another live run holds (read-only);
  2. `check_resume_config` — refuse resuming a run whose saved config.json differs in a
     flag that changes the model, the objective or the data (read-only);
then `WorkdirLock.acquire` (held until the run ends), `move_aside` when --restart was
given, and `restore_latest_good`, which falls back past unreadable checkpoints.

Guarantees (docs/reliability.md):
  * The lock is an flock(2) on WORKDIR/.jaxgan.lock; the kernel drops it when the holder
    exits in any way (SIGKILL included), so there is never a stale lock to clean up.
  * --restart never deletes: the old contents move to a sibling WORKDIR.old-<UTC time>.
  * A corrupted checkpoint is never deleted either: it moves to
    WORKDIR/corrupt_checkpoints/<step> once an older readable one has been found.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

from absl import logging

from jaxgan import fileio
from jaxgan.config import Config
from jaxgan.errors import WorkdirError

if TYPE_CHECKING:  # orbax is imported when a checkpoint is touched (the loop: after the
  from jaxgan.runtime.checkpoint import Checkpoints  # step compiles; ~26 MB peak RSS).

LOCK_NAME = ".jaxgan.lock"
CORRUPT_DIR = "corrupt_checkpoints"
# Flags whose change makes a saved run a different experiment (other shapes, another
# model, objective, update rule or data): resuming with a change is refused.
# data_name is the data's own name (config.Config.data_name: the --data_dir folder's, else
# --dataset), so moving the IDX folder is free but pointing it at other data is not.
RESUME_FIXED = ("data_name", "model", "loss", "latent_dim", "optimizer", "num_d_steps",
                "update_order", "feature_matching", "minibatch_kernels",
                "minibatch_kernel_dim", "d_norm", "g_ema_decay", "noise", "conditional",
                "pack", "unroll_steps", "unroll_objective", "d_steps_schedule", "num_valid",
                "train_subset", "train_subset_seed", "sweep", "r1_gamma", "r2_gamma",
                "d_reg_interval", "lecam_weight", "lecam_decay", "lecam_start",
                "diffaugment", "pbt_interval", "pbt_fraction", "pbt_perturb",
                "pbt_resample")
# The value a run saved before a RESUME_FIXED flag existed trained with (its config.json
# lacks the flag): resuming it with another value is refused like any other change.
BEFORE_THE_FLAG = {"unroll_objective": "g_loss", "r1_gamma": 0.0, "r2_gamma": 0.0,
                   "d_reg_interval": 1, "lecam_weight": 0.0, "lecam_decay": 0.9,
                   "lecam_start": 1000, "train_subset": 0, "train_subset_seed": 0,
                   "diffaugment": "", "pbt_interval": 0, "pbt_fraction": 0.25,
                   "pbt_perturb": "0.8,1.2", "pbt_resample": 0.0}
# Flags that only say how long to train and what to write: free to change on resume.
# Any other change (learning rates, batch size, seed, ...) is allowed with a warning:
# the continuation is then no longer the uninterrupted run.
RESUME_FREE = ("dataset", "data_dir", "num_steps", "num_epochs", "log_every", "sample_every",
               "checkpoint_every", "sample_grid", "max_checkpoints", "steps_per_call",
               "eval_every", "eval_num_samples", "eval_parzen", "classifier_dir",
               "feature_network", "inception_weights",
               "sweep_metric", "mesh_shape", "sweep_plot")
_RESTART_HINT = ("--restart to start over here (the old contents are moved to "
                 "{workdir}.old-<time>, nothing is deleted)")


def _describe_holder(path: str) -> str:
  try:
    with open(path) as f:
      info = json.load(f)
    return (f"pid {info['pid']} on host {info['host']}, started {info['started']}; "
            f"its command: {info.get('argv', '?')}")
  except (OSError, ValueError, KeyError, TypeError):
    return "pid unknown: the lock file is being written"


class WorkdirLock:
  """An exclusive flock on WORKDIR/.jaxgan.lock naming its holder (pid, host, time)."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_NAME)
    self._fd: int | None = None

  def _refuse(self) -> WorkdirError:
    return WorkdirError(
        f"workdir {self.workdir} is in use by another jaxgan run "
        f"({_describe_holder(self.path)}). Wait for it to end or stop it "
        "(kill -TERM <pid> checkpoints and exits), or choose another --workdir.")

  def check_free(self) -> None:
    """Raises WorkdirError if the workdir is not a folder or a live process holds the
    lock; creates nothing."""
    if os.path.exists(self.workdir) and not os.path.isdir(self.workdir):
      raise WorkdirError(f"--workdir={self.workdir!r} exists and is not a folder; "
                         "expected a folder (it is created if missing).")
    try:
      fd = os.open(self.path, os.O_RDONLY)
    except FileNotFoundError:
      return
    except OSError as e:
      raise WorkdirError(f"cannot read the lock file {self.path}: {e.strerror}.") from None
    try:
      fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
        raise self._refuse() from None
      raise
    finally:
      os.close(fd)  # Also drops the shared lock taken to test.

  def acquire(self) -> "WorkdirLock":
    """Creates the workdir if needed and takes the lock, or raises WorkdirError."""
    try:
      os.makedirs(self.workdir, exist_ok=True)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:  # Not a folder, no permission, read-only file system, ...
      raise WorkdirError(f"cannot create or lock workdir {self.workdir}: "
                         f"{e.strerror}.") from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(fd)
      if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
        raise self._refuse() from None
      raise WorkdirError(f"cannot lock workdir {self.workdir}: {e.strerror} "
                         "(the file system must support flock).") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "argv": " ".join(sys.argv)}
    try:
      with fileio.writing_to(self.path, "the lock holder's name"):
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    except BaseException:
      os.close(fd)
      raise
    self._fd = fd
    return self

  def release(self) -> None:
    """Drops the lock (the file stays: deleting it would race with a new locker)."""
    if self._fd is not None:
      os.close(self._fd)
      self._fd = None


def check_resume_config(workdir: str, config: Config) -> None:
  """Compares `config` with the workdir's saved config.json, if any.

  Raises WorkdirError naming every RESUME_FIXED flag that differs; logs a warning for
  other differing flags outside RESUME_FREE. Reads only.
  """
  path = os.path.join(workdir, "config.json")
  try:
    with open(path) as f:
      saved = json.load(f)
    if not isinstance(saved, dict):
      raise ValueError("not a JSON object")
  except FileNotFoundError:
    return
  except (OSError, ValueError) as e:
    logging.warning("Cannot read %s (%s); resuming checks the checkpoint's array "
                    "shapes only.", path, e)
    return
  now = {**json.loads(config.to_json()), "data_name": config.data_name}
  saved = {**BEFORE_THE_FLAG, **saved}
  if "data_name" not in saved and not saved.get("data_dir"):
    saved = {**saved, "data_name": saved.get("dataset")}  # Written before data_name.
  differs = [name for name in now if name in saved and saved[name] != now[name]]
  fixed = [n for n in differs if n in RESUME_FIXED]
  if fixed:
    listing = ", ".join(f"--{n}={saved[n]!r} (saved) vs {now[n]!r} (now)" for n in fixed)
    raise WorkdirError(
        f"workdir {workdir} holds a run with different flags: {listing}. Resuming it "
        "with these would mix two experiments. Resume with the saved values, use "
        "another --workdir, or " + _RESTART_HINT.format(workdir=workdir.rstrip("/")) + ".")
  changed = [n for n in differs if n not in RESUME_FREE]
  if changed:
    logging.warning(
        "Resuming %s with changed flags: %s. The continuation will differ from an "
        "uninterrupted run of the saved config.", workdir,
        ", ".join(f"--{n}={saved[n]!r} -> {now[n]!r}" for n in changed))


def move_aside(workdir: str) -> str | None:
  """Moves everything in `workdir` but the lock to a new sibling WORKDIR.old-<UTC time>.

  Call while holding the lock. Returns the new folder, or None if there was nothing.
  """
  entries = [e for e in os.listdir(workdir) if e != LOCK_NAME]
  if not entries:
    return None
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
  base = os.path.abspath(workdir).rstrip("/") + f".old-{stamp}"
  target, n = base, 1
  while os.path.exists(target):
    target, n = f"{base}.{n}", n + 1
  with fileio.writing_to(target, "the previous contents (--restart)"):
    os.makedirs(target)
    for entry in entries:
      os.rename(os.path.join(workdir, entry), os.path.join(target, entry))
  return target


def restore_latest_good(ckpts: Checkpoints, like: Any, workdir: str,
                        set_aside: bool = True) -> tuple[Any, int] | None:
  """(state, step) of the newest checkpoint that reads back intact, restored into
  `like`'s structure (and shardings).

  Returns None when there is no checkpoint. Unreadable newer checkpoints are reported and
  (set_aside: by the lock holder) moved to WORKDIR/corrupt_checkpoints/, so the run can
  write those steps again.
  Raises WorkdirError if the arrays' shapes do not match `like` (a different model or
  data), or if no checkpoint is readable.
  """
  from jaxgan.runtime.checkpoint import CheckpointCorrupted
  steps = sorted(ckpts.all_steps(), reverse=True)
  corrupted: list[CheckpointCorrupted] = []
  for step in steps:
    try:
      mismatches = ckpts.shape_mismatches(like, step)
      if mismatches:
        more = f" and {len(mismatches) - 3} more" if len(mismatches) > 3 else ""
        raise WorkdirError(
            f"the checkpoint at step {step} in {ckpts.directory} does not fit this "
            f"configuration: {'; '.join(mismatches[:3])}{more}. The image shape "
            "(--dataset/--data_dir) or a model flag differs from the run that wrote it. "
            "Use the original flags, another --workdir, or "
            + _RESTART_HINT.format(workdir=workdir.rstrip("/")) + ".")
      state = ckpts.restore(like, step)
    except CheckpointCorrupted as e:
      logging.warning("%s; trying the previous checkpoint.", e)
      corrupted.append(e)
      continue
    for bad in corrupted:
      if set_aside:
        moved = ckpts.set_aside(bad.step, os.path.join(workdir, CORRUPT_DIR))
        logging.warning("Moved the unreadable checkpoint of step %d to %s; resuming "
                        "from step %d.", bad.step, moved, step)
    return state, step
  if corrupted:
    raise WorkdirError(
        f"no readable checkpoint in {ckpts.directory}: "
        + "; ".join(str(e) for e in corrupted) + ". Nothing was changed. Move the "
        "checkpoints away to start from scratch, or "
        + _RESTART_HINT.format(workdir=workdir.rstrip("/")) + ".")
  return None
