"""Two processes on localhost (CPU, 2 devices each; members over 'pop', each member's
batch over 'data', so every batch spans both processes) train a population in agreement
with one process on one device (conftest's `one_device_population`, shared with
test_sweep_devices.py); only process 0 writes records and the results. The pair resumes
from its checkpoint, and a stop signal to one process stops both at the same step with
one checkpoint.

Few steps: what this checks is the collective program, who writes and who stops, not
training.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess

import pytest

import toolkit
from jaxgan.errors import EXIT_PREEMPTED
from test_sweep import assert_trains_alike


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def start_pair(workdir: str, config, *extra: str) -> list[subprocess.Popen]:
  port = free_port()
  return [subprocess.Popen(
      toolkit.main_command(workdir, config, "--mesh_shape=2,2",
                           f"--coordinator_address=localhost:{port}",
                           "--num_processes=2", f"--process_id={i}", *extra),
      cwd=toolkit.REPO,
      env=toolkit.subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]


def finish(procs: list[subprocess.Popen], timeout: float = 180) -> list[tuple[str, str]]:
  """(stdout, stderr) of each process once both have ended."""
  try:
    return [p.communicate(timeout=timeout) for p in procs]
  except subprocess.TimeoutExpired:
    for p in procs:
      p.kill()
    outputs = [p.communicate() for p in procs]
    pytest.fail(f"the 2-process run did not end within {timeout} s (a collective that "
                "only one process entered?); process 0's log:\n" + outputs[0][1][-3000:])


@pytest.fixture(scope="module")
def two_process_run(one_device_population, tmp_path_factory):
  """(workdir, processes, their (stdout, stderr)) of the one-device population's config
  trained by two processes: the run both tests below start from (each pair run costs
  ~20 CPU-s: process 1 compiles everything itself, only process 0 writes the
  compilation cache, and the keys differ between processes)."""
  workdir = str(tmp_path_factory.mktemp("two_processes") / "two")
  procs = start_pair(workdir, one_device_population[0])
  return workdir, procs, finish(procs)


@pytest.mark.xdist_group("devices")
def test_two_processes_agree_with_one_process(one_device_population, two_process_run,
                                              one_device_initial_state):
  config, one_dir, one = one_device_population
  two_dir, procs, outputs = two_process_run
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]

  one_records, two_records = toolkit.read_metrics(one_dir), toolkit.read_metrics(two_dir)
  # Process 1 wrote nothing: exactly one record per (step, member).
  assert [(r["step"], r["member"], r["lr_d"]) for r in two_records] == [
      (s, m, lr) for s in (1, 2) for m, lr in enumerate((1e-4, 1e-4, 3e-4, 3e-4))]
  for a, b in zip(two_records, one_records):
    assert a.keys() == b.keys()  # Every logged metric, each within float reassociation.
    assert a == pytest.approx(b, rel=1e-5)
  assert "Sweep of 4 members" in outputs[0][0]
  assert "Sweep of 4 members" not in outputs[1][0]
  # The checkpoint both processes wrote together holds the same population: the same
  # updates, each within 5e-3 of its own size. (After an Adam step each parameter moved
  # by lr * g / (|g| + eps): where a gradient element is near eps = 1e-8, the split
  # batch's other summation order shows, at up to ~0.2 % of the largest update.)
  assert_trains_alike(toolkit.restore_checkpoint(two_dir, one, 2), one, rtol=5e-3,
                      init=one_device_initial_state)


@pytest.mark.xdist_group("devices")
def test_the_pair_resumes_and_a_signal_to_one_process_stops_both_at_one_step(
    one_device_population, two_process_run, tmp_path):
  # The two-step run above, continued (the same program: no compilation for process 0)
  # with room to be stopped.
  workdir = str(tmp_path / "two")
  shutil.copytree(two_process_run[0], workdir)
  procs = start_pair(workdir, one_device_population[0], "--num_steps=10000")
  toolkit.wait_for_logged_step(procs[0], workdir, 3)
  # Process 1 does not write: process 0 learns of the signal only from the other.
  procs[1].send_signal(signal.SIGTERM)
  errs = [err for _, err in finish(procs)]
  for p, err in zip(procs, errs):
    assert p.returncode == EXIT_PREEMPTED, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    # Each process resumed from the checkpoint of step 2 and trained on from there.
    toolkit.assert_resumed(err, 2, workdir, to_the_end=False)
  stops = [re.findall(r"stopped by (.+?) after step (\d+);", err) for err in errs]
  assert [len(s) for s in stops] == [1, 1] and stops[1][0][0] == "SIGTERM", stops
  stopped = int(stops[1][0][1])
  assert int(stops[0][0][1]) == stopped < 10_000  # The same step in both.
  # One checkpoint of the stop, written by both (--checkpoint_every=0), next to step 2's.
  assert toolkit.checkpoint_steps(workdir) == [2, stopped]
  assert [(r["step"], r["member"]) for r in toolkit.read_metrics(workdir)] == [
      (s, m) for s in range(1, stopped + 1) for m in range(4)]

