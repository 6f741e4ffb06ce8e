"""Faults of the file system under a training run: a checkpoint, a metrics record or a
sample grid that cannot be written (no space, no permission) ends the run through the
entry point with one line (what, where, the checkpoint kept, how to resume), exit code
EXIT_IO and no traceback; the same command resumes from the kept checkpoint. The faults
are faked where the OS would raise them, and once for real on a small tmpfs (skipped
where mounting is not permitted).

Every run trains toy_mlp on a tiny IDX folder (64 random 8x8 images) for 4 steps (logs
every step, samples and checkpoints every 2), in this process but for the real full disk,
whose failing run is a program of its own so that its whole stderr is seen.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess

import orbax.checkpoint as ocp
import PIL.Image
import pytest

from jaxgan.errors import EXIT_IO, EXIT_USAGE
from jaxgan.runtime import tb_events, writers

import toolkit


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return toolkit.tiny_idx_dir(str(tmp_path_factory.mktemp("faults") / "idx"))


def config_of(data_dir: str):
  return toolkit.tiny_config(data_dir, model="toy_mlp", num_steps=4, log_every=1,
                             sample_every=2, checkpoint_every=2)


def argv(data_dir: str, workdir) -> list[str]:
  return [f"--workdir={workdir}", *toolkit.config_flags(config_of(data_dir))]


def the_line(stderr: str) -> str:
  """The run's one line: it is all of stderr, and holds no traceback."""
  assert "Traceback" not in stderr, stderr
  lines = stderr.strip().splitlines()
  assert len(lines) == 1, stderr
  assert lines[0].startswith("jaxgan: could not write "), stderr
  return lines[0]


def checkpoint_dir_entries(workdir) -> list[str]:
  return sorted(os.listdir(os.path.join(workdir, "checkpoints")))


def test_a_checkpoint_without_space_ends_in_one_line_and_the_run_resumes(
    data_dir, tmp_path, capsys, caplog, monkeypatch):
  workdir = tmp_path / "run"
  real_save = ocp.CheckpointManager.save

  def full_disk_at_step_4(self, step, *args, **kwargs):
    if step != 4:
      return real_save(self, step, *args, **kwargs)
    # What orbax leaves and raises when tensorstore's write finds the disk full: a
    # partial step folder, and the OS error inside a ValueError's message.
    os.makedirs(os.path.join(self.directory, f"{step}.orbax-checkpoint-tmp-7", "d"))
    raise ValueError(
        'RESOURCE_EXHAUSTED: Error writing "d.params/0" in OCDBT database: Failed to '
        "write 1892352 bytes to file 19: No space left on device [os_error_code='28']")

  monkeypatch.setattr(ocp.CheckpointManager, "save", full_disk_at_step_4)
  code, stderr = toolkit.run_main_in_process(argv(data_dir, workdir), capsys)
  assert code == EXIT_IO == 74
  line = the_line(stderr)
  assert line == (
      f"jaxgan: could not write the checkpoint of step 4 to {workdir}/checkpoints: no "
      "space left on the device (ENOSPC). Nothing is lost: the last good checkpoint "
      "(step 2) is kept and the partial one was removed. To resume from step 2: free "
      "space on that file system, then run the same command again.")
  assert checkpoint_dir_entries(workdir) == ["2"]  # Partial folder gone; 2 the latest.

  monkeypatch.undo()  # Space freed.
  caplog.set_level(logging.INFO, logger="absl")
  code, stderr = toolkit.run_main_in_process(argv(data_dir, workdir), capsys)
  assert code == 0, stderr
  assert f"Resumed from {workdir}/checkpoints at step 2." in caplog.text
  assert checkpoint_dir_entries(workdir) == ["2", "4"]
  assert [r["step"] for r in toolkit.read_metrics(str(workdir))] == [1, 2, 3, 4]


def test_a_metrics_record_without_space_ends_in_one_line(data_dir, tmp_path, capsys,
                                                         monkeypatch):
  workdir = tmp_path / "run"
  real_open, appends = open, []

  class FullDisk:
    """A file whose writes fail as on a full disk (OSError naming no file)."""

    def __init__(self, file):
      self.file = file

    def __enter__(self):
      return self

    def __exit__(self, *exc):
      self.file.close()

    def write(self, text):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  def open_fills_at_third_append(path, mode="r", *args, **kwargs):
    file = real_open(path, mode, *args, **kwargs)
    if str(path).endswith("metrics.jsonl") and "a" in mode:
      appends.append(path)
      if len(appends) == 3:  # The record of step 3, after checkpoint 2.
        return FullDisk(file)
    return file

  def close_flushes_onto_the_full_disk(self):
    real_close(self)
    if len(appends) >= 3:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  real_close = tb_events.EventFileWriter.close
  monkeypatch.setattr(writers, "open", open_fills_at_third_append, raising=False)
  # Closing the TensorBoard file on the way out fails too: the first failure is the one
  # reported.
  monkeypatch.setattr(tb_events.EventFileWriter, "close", close_flushes_onto_the_full_disk)
  code, stderr = toolkit.run_main_in_process(argv(data_dir, workdir), capsys)
  assert code == EXIT_IO
  assert the_line(stderr) == (
      f"jaxgan: could not write the metrics of step 3 to {workdir}/metrics.jsonl: no "
      "space left on the device (ENOSPC). Nothing is lost: the last good checkpoint "
      "(step 2) is kept. To resume from step 2: free space on that file system, then "
      "run the same command again.")
  assert checkpoint_dir_entries(workdir) == ["2"]


def test_a_sample_grid_without_permission_ends_in_one_line(data_dir, tmp_path, capsys,
                                                           monkeypatch):
  workdir = tmp_path / "run"
  real_save = PIL.Image.Image.save

  def refused_in_samples(self, fp, *args, **kwargs):
    if "samples" in str(fp):  # Root ignores file modes: the refusal is faked.
      raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(fp))
    return real_save(self, fp, *args, **kwargs)

  monkeypatch.setattr(PIL.Image.Image, "save", refused_in_samples)
  code, stderr = toolkit.run_main_in_process(argv(data_dir, workdir), capsys)
  assert code == EXIT_IO
  # The target is named, not the temporary file the PNG was written to first.
  assert the_line(stderr) == (
      f"jaxgan: could not write {workdir}/samples/step_2.png: permission denied "
      "(EACCES). No checkpoint had been written yet. To start again: make "
      f"{workdir} writable for this user, then run the same command again.")
  assert checkpoint_dir_entries(workdir) == []
  assert os.listdir(workdir / "samples") == []  # No temporary file left behind.


@pytest.fixture
def small_tmpfs(tmp_path):
  """A 1 MiB tmpfs (a checkpoint of these runs takes ~0.65 MB: one fits, two do not);
  skipped where this process may not mount one."""
  mount_point = tmp_path / "fs"
  mount_point.mkdir()
  try:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                           str(mount_point)], capture_output=True, text=True)
  except FileNotFoundError:
    pytest.skip("no mount command here")
  if done.returncode != 0:
    pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
  yield mount_point
  subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_real_full_disk_during_a_checkpoint_ends_in_one_line_and_the_run_resumes(
    data_dir, small_tmpfs, capsys):
  workdir = small_tmpfs / "run"
  # A program of its own: what orbax's writer threads print goes to its real stderr.
  done = toolkit.run_command(toolkit.main_command(str(workdir), config_of(data_dir)))
  assert done.returncode == EXIT_IO, done.stderr
  # Its INFO log lines aside, stderr is the one line: no ERROR log, no traceback.
  assert [line for line in done.stderr.splitlines() if not line.startswith("I")] == [
      f"jaxgan: could not write the checkpoint of step 4 to {workdir}/checkpoints: no "
      "space left on the device (ENOSPC). Nothing is lost: the last good checkpoint "
      "(step 2) is kept and the partial one was removed. To resume from step 2: free "
      "space on that file system, then run the same command again."], done.stderr
  assert checkpoint_dir_entries(workdir) == ["2"]

  subprocess.run(["mount", "-o", "remount,size=4m", str(small_tmpfs)], check=True)
  code, stderr = toolkit.run_main_in_process(argv(data_dir, workdir), capsys)
  assert code == 0, stderr
  assert checkpoint_dir_entries(workdir) == ["2", "4"]
  assert [r["step"] for r in toolkit.read_metrics(str(workdir))] == [1, 2, 3, 4]


def test_mesh_shape_on_a_single_run_is_refused_before_anything_is_written(
    data_dir, tmp_path, capsys):
  workdir = tmp_path / "run"
  code, stderr = toolkit.run_main_in_process(
      [*argv(data_dir, workdir), "--mesh_shape=3x3"], capsys)
  assert code == EXIT_USAGE
  assert stderr.startswith("jaxgan: error: --mesh_shape=3x3 applies to a --sweep or a "
                           "multi-process run"), stderr
  assert not workdir.exists()
