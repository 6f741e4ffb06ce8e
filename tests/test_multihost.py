"""Two processes on localhost (CPU, 2 devices each) train a population in agreement with
one process on one device; only process 0 writes logs and results."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np

from sweep_fixtures import tiny_idx_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _args(data_dir: str, workdir: str) -> list[str]:
  return [sys.executable, "-m", "jaxgan.main", f"--data_dir={data_dir}",
          "--dataset=tiny", "--latent_dim=4", "--batch_size=8", "--num_steps=2",
          "--log_every=1", "--sample_every=0", "--checkpoint_every=0",
          "--sweep=lr_d=1e-4,3e-4", f"--workdir={workdir}"]


def _records(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_two_processes_agree_with_one_process(tmp_path):
  data_dir = tiny_idx_dir(str(tmp_path / "data"))
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
  env.pop("XLA_FLAGS", None)
  single = subprocess.run(_args(data_dir, str(tmp_path / "one")), env=env,
                          capture_output=True, text=True, timeout=600)
  assert single.returncode == 0, single.stderr[-3000:]

  # 2 processes x 2 devices: members over 'pop' (2), each batch over 'data' (2), so
  # every member's batch is split across the two processes.
  port = _free_port()
  multi_env = dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  procs = [subprocess.Popen(
      _args(data_dir, str(tmp_path / "two")) + [
          "--mesh_shape=2,2", f"--coordinator_address=localhost:{port}",
          "--num_processes=2", f"--process_id={i}"],
      env=multi_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]

  one, two = _records(str(tmp_path / "one")), _records(str(tmp_path / "two"))
  # Process 1 wrote nothing: exactly one record per (step, member).
  assert [(r["step"], r["member"]) for r in two] == [(1, 0), (1, 1), (2, 0), (2, 1)]
  assert [(r["step"], r["member"], r["lr_d"]) for r in one] == [
      (r["step"], r["member"], r["lr_d"]) for r in two]
  for name in ("d_loss", "g_loss", "d_real", "d_fake"):
    np.testing.assert_allclose([r[name] for r in two], [r[name] for r in one],
                               rtol=1e-5, err_msg=name)
  assert "Sweep of 2 members" in outputs[0][0]
  assert "Sweep of 2 members" not in outputs[1][0]
  assert os.path.isdir(os.path.join(str(tmp_path / "two"), "checkpoints", "2"))
