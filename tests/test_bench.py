"""The benchmark command runs and prints its documented fields (not a speed test)."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = {"name", "batch_size", "steps_per_call", "members", "steps_per_s", "compile_s", "startup_s",
          "peak_rss_mb", "gflop_per_step", "gflop_s", "matmul_gflop_s", "matmul_share",
          "ceiling_steps_per_s", "startup_phases"}
PHASES = {"imports_s", "data_s", "compile_s", "init_s", "first_step_s"}


def test_bench_json_reports_every_field_for_a_tiny_case():
  out = subprocess.run(
      [sys.executable, "-m", "jaxgan.bench", "--json", "--cases=mlp", "--steps=2",
       "--repeats=2", "--batch_size=8"],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
  assert len(rows) == 1
  row = rows[0]
  assert FIELDS <= set(row), FIELDS - set(row)
  assert row["name"] == "mlp" and row["batch_size"] == 8
  assert row["steps_per_s"] > 0 and row["compile_s"] > 0 and row["peak_rss_mb"] > 50
  assert row["startup_s"] >= row["compile_s"]
  # XLA's count for mlp at batch 8: 1.248 GFLOP at batch 64 scales with the batch.
  assert 0.1 < row["gflop_per_step"] < 0.3
  assert len(row["steps_per_s_repeats"]) == 2
  assert set(row["startup_phases"]) == PHASES
  assert sum(row["startup_phases"].values()) <= row["startup_s"] + 0.05


def test_bench_profile_writes_traces_and_a_summary(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "jaxgan.bench", "--json", "--cases=mlp", "--steps=2",
       "--repeats=1", "--batch_size=8", f"--profile_dir={tmp_path}"],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  row = json.loads([l for l in out.stdout.splitlines() if l.startswith("{")][-1])
  summary = open(row["profile"]).read()
  # The compile trace has XLA's phases; the steps trace has per-kernel events.
  compiled_kernels = [l for l in summary.splitlines() if "FusionCompiler::Compile" in l]
  assert compiled_kernels and int(compiled_kernels[0].split("x")[-1]) > 10, summary
  kernel_lines = summary.split("Kernel time per step")[1].splitlines()[1:]
  assert len(kernel_lines) >= 3 and float(kernel_lines[-1].split()[-1]) > 0, summary
  for sub in ("compile", "steps"):
    assert os.path.isdir(os.path.join(tmp_path, "mlp", sub, "plugins", "profile"))


def test_bench_rejects_unknown_cases():
  out = subprocess.run([sys.executable, "-m", "jaxgan.bench", "--cases=nope"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 2
  assert "--cases: unknown ['nope']" in out.stderr and "Traceback" not in out.stderr
