"""Two processes on localhost (CPU, 2 devices each; members over 'pop', each member's
batch over 'data', so every batch spans both processes) train a population in agreement
with one process on one device (conftest's `one_device_population`, shared with
test_sweep_devices.py); only process 0 writes records and the results.

Two steps: what this checks is the collective program and who writes, not training.
"""

from __future__ import annotations

import socket
import subprocess

import pytest

import toolkit
from test_sweep import assert_trains_alike


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.xdist_group("devices")
def test_two_processes_agree_with_one_process(one_device_population, tmp_path):
  config, one_dir, one = one_device_population
  two_dir = str(tmp_path / "two")
  port = free_port()
  procs = [subprocess.Popen(
      toolkit.main_command(two_dir, config, "--mesh_shape=2,2",
                           f"--coordinator_address=localhost:{port}",
                           "--num_processes=2", f"--process_id={i}"),
      cwd=toolkit.REPO,
      env=toolkit.subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
  try:
    outputs = [p.communicate(timeout=180) for p in procs]
  except subprocess.TimeoutExpired:
    for p in procs:
      p.kill()
    outputs = [p.communicate() for p in procs]
    pytest.fail("the 2-process run did not end within 180 s (a collective that only "
                "one process entered?); process 0's log:\n" + outputs[0][1][-3000:])
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
  # The checkpoint both processes wrote together holds the same population. (After an
  # Adam step each parameter moved by lr * g / (|g| + eps): where a gradient element is
  # near eps = 1e-8, the split batch's other summation order shows at ~1e-4 of lr.)
  assert_trains_alike(toolkit.restore_checkpoint(two_dir, one, 2), one, rtol=1e-3)
