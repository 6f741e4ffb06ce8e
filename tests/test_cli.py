"""The command-line programs: `python -m jaxgan.main` (in this process, through its real
flag parser and main: toolkit.run_main_in_process), and `jaxgan.evaluate`,
`jaxgan.bench` and `jaxgan.figure1` (in subprocesses, or their library functions: a
process holds one program's flags).

Every input error is one line `jaxgan: error: ...`, exit code 2, no traceback, and the
workdir is not created or changed.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys

import numpy as np
import pytest

from jaxgan.cli import figure1
from jaxgan.errors import EXIT_USAGE
from jaxgan.runtime import evaluation, loop

import toolkit

MNIST_FLAGS = os.path.join(toolkit.REPO, "experiments", "mnist.flags")


def small_idx_folder(folder) -> str:
  """4 uint8 3x3 images with labels 0, 1, 2, 1."""
  images = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
  return toolkit.write_idx_dir(folder, images, np.array([0, 1, 2, 1], np.uint8))


# --------------------------------------------------------------------------- main
@pytest.mark.parametrize("argv, message", [
    (["--num_steps=abc"], "jaxgan: error: flag --num_steps=abc: invalid literal for int"),
    (["--no_such_flag=1"], "jaxgan: error: Unknown command line flag 'no_such_flag'"),
    (["--flagfile=/nonexistent.flags"], "Unable to open flagfile"),
    (["stray"], "jaxgan: error: unexpected arguments ['stray']"),
    (["--num_steps=5", "--lr_g=-1"], "jaxgan: error: --lr_g=-1.0 is invalid"),
    (["--num_steps=1", "--model=nope"],
     "jaxgan: error: --model='nope' is invalid: expected one of"),
    (["--num_steps=1", "--sample_grid=1000"],
     "jaxgan: error: --sample_grid=1000 is invalid: expected a grid of at most 32 x 32 "
     "images."),
])
def test_bad_command_lines_exit_2_with_one_message(argv, message, tmp_path, capsys):
  workdir = tmp_path / "run"
  code, err = toolkit.run_main_in_process([f"--workdir={workdir}", *argv], capsys)
  assert code == EXIT_USAGE
  assert message in err
  assert err.count("jaxgan: error:") == 1 and "Traceback" not in err
  assert not workdir.exists()


def test_bad_data_folder_exits_2_and_creates_no_workdir(tmp_path, capsys):
  folder = small_idx_folder(tmp_path / "idx")
  with open(os.path.join(folder, "train-images-idx3-ubyte"), "r+b") as f:
    f.truncate(16 + 35)  # One pixel short.
  workdir = tmp_path / "run"
  code, err = toolkit.run_main_in_process(
      [f"--workdir={workdir}", f"--data_dir={folder}", "--num_steps=2",
       "--batch_size=2"], capsys)
  assert code == EXIT_USAGE
  assert "jaxgan: error: IDX file" in err
  assert "need 36 bytes of data but the file holds 35 (truncated or corrupted)" in err
  assert "Traceback" not in err
  assert not workdir.exists()


def test_workdir_that_is_a_file_exits_2_and_is_left_alone(tmp_path, capsys):
  folder = small_idx_folder(tmp_path / "idx")
  not_a_folder = tmp_path / "run"
  not_a_folder.write_text("precious")
  code, err = toolkit.run_main_in_process(
      [f"--workdir={not_a_folder}", f"--data_dir={folder}", "--num_steps=2",
       "--batch_size=2"], capsys)
  assert code == EXIT_USAGE
  assert "exists and is not a folder" in err and "Traceback" not in err
  assert not_a_folder.read_text() == "precious"


def saved_config(workdir) -> dict:
  with open(os.path.join(workdir, "config.json")) as f:
    return json.load(f)


def test_num_steps_after_a_flagfile_trains_that_many_steps(tiny_idx_dir, tmp_path,
                                                           capsys):
  # mnist.flags says --num_epochs=200; the later --num_steps=2 decides the run's length.
  workdir = tmp_path / "run"
  code, err = toolkit.run_main_in_process(
      [f"--flagfile={MNIST_FLAGS}", "--num_steps=2", f"--data_dir={tiny_idx_dir}",
       f"--workdir={workdir}"], capsys)
  assert code == 0, err[-3000:]
  saved = saved_config(workdir)
  assert (saved["num_steps"], saved["num_epochs"], saved["resolved_num_steps"]) == (
      2, 0, 2)
  assert [r["step"] for r in toolkit.read_metrics(str(workdir))] == [2]  # The last step.


def test_the_later_of_num_steps_and_num_epochs_wins(tiny_idx_dir, tmp_path, capsys):
  # 256 images / batch 64 = 4 batches per epoch: 0.5 epochs are ceil(0.5 * 4) = 2 steps.
  workdir = tmp_path / "run"
  code, err = toolkit.run_main_in_process(
      [f"--flagfile={MNIST_FLAGS}", "--num_steps=5", "--num_epochs=0.5",
       f"--data_dir={tiny_idx_dir}", f"--workdir={workdir}"], capsys)
  assert code == 0, err[-3000:]
  saved = saved_config(workdir)
  assert (saved["num_steps"], saved["num_epochs"], saved["resolved_num_steps"]) == (
      0, 0.5, 2)
  assert [r["step"] for r in toolkit.read_metrics(str(workdir))] == [2]


# Every flag that is a length (of the run, of a step, of a dispatch, of G's unroll) given
# as 0 or negative after a flagfile that sets the run's length. 0 means "off" for
# --unroll_steps (and for the schedules --log_every, --eval_every, ...), so only its
# negative value is a bad length.
@pytest.mark.parametrize("flag, message", [
    ("--num_steps=0", "--num_steps=0 is invalid: expected a positive number of steps"),
    ("--num_steps=-3", "--num_steps=-3 is invalid: expected a positive number of steps"),
    ("--num_epochs=0", "--num_epochs=0.0 is invalid: expected a positive number of "
     "epochs"),
    ("--num_epochs=-0.5", "--num_epochs=-0.5 is invalid: expected a positive number of "
     "epochs"),
    ("--num_d_steps=0", "--num_d_steps=0 is invalid: expected an integer >= 1"),
    ("--num_d_steps=-1", "--num_d_steps=-1 is invalid: expected an integer >= 1"),
    ("--steps_per_call=0", "--steps_per_call=0 is invalid: expected an integer >= 1"),
    ("--unroll_steps=-1", "--unroll_steps=-1 is invalid: expected an integer >= 0"),
])
def test_a_length_of_zero_or_less_after_a_flagfile_is_refused(flag, message, tiny_idx_dir,
                                                               tmp_path, capsys):
  # mnist.flags sets --num_epochs=200: a 0 typed after it is a value, not "unset".
  workdir = tmp_path / "run"
  code, err = toolkit.run_main_in_process(
      [f"--flagfile={MNIST_FLAGS}", flag, f"--data_dir={tiny_idx_dir}",
       f"--workdir={workdir}"], capsys)
  assert code == EXIT_USAGE, err[-3000:]
  assert err.startswith(f"jaxgan: error: {message}") and err.count("\n") == 1, err
  assert not workdir.exists()


def imported_modules(importtime_stderr: str) -> set[str]:
  """The modules a `python -X importtime` run imported (the last column of its lines)."""
  return {line.rsplit("|", 1)[1].strip() for line in importtime_stderr.splitlines()
          if line.startswith("import time:") and "|" in line}


def test_helpshort_lists_the_training_flags_without_importing_jax():
  # The flag parser answers before jax (seconds to import) is loaded.
  result = toolkit.run_command(
      [sys.executable, "-X", "importtime", "-m", "jaxgan.main", "--helpshort"],
      timeout=120)
  assert result.returncode in (0, 1), result.stderr[-2000:]  # absl's help exits 1.
  assert "--num_steps:" in result.stdout and "--workdir:" in result.stdout
  assert "Traceback" not in result.stderr
  imported = imported_modules(result.stderr)
  assert "jaxgan.cli.main" in imported  # The output is the one parsed.
  assert not {"jax", "flax"} & imported


def test_import_jaxgan_and_its_config_import_no_jax():
  result = toolkit.run_command([sys.executable, "-c", (
      "import sys, jaxgan\n"
      "assert 'jax' not in sys.modules, 'import jaxgan'\n"
      "jaxgan.Config(num_steps=1)\n"
      "assert 'jax' not in sys.modules, 'jaxgan.Config'\n")], timeout=60)
  assert result.returncode == 0, result.stderr[-2000:]


def test_the_public_names_resolve_lazily_to_their_modules():
  import jaxgan
  from jaxgan import config, data, state, steps
  assert set(dir(jaxgan)) == set(jaxgan.__all__)
  for name in jaxgan.__all__:
    assert getattr(jaxgan, name) is not None, name
  assert (jaxgan.make_steps, jaxgan.Steps, jaxgan.repeat_step) == (
      steps.make_steps, steps.Steps, steps.repeat_step)
  assert (jaxgan.GANState, jaxgan.GAN, jaxgan.make_gan, jaxgan.gan_from_modules) == (
      state.GANState, state.GAN, state.make_gan, state.gan_from_modules)
  assert (jaxgan.Config, jaxgan.load_dataset, jaxgan.data) == (
      config.Config, data.load_dataset, data)
  with pytest.raises(AttributeError, match="no attribute 'nope'"):
    jaxgan.nope  # noqa: B018


# --------------------------------------------------------------------------- evaluate
def test_evaluate_command_without_workdir_exits_2():
  result = toolkit.run_command([sys.executable, "-m", "jaxgan.evaluate"], timeout=120)
  assert result.returncode == EXIT_USAGE
  assert "jaxgan: error: --workdir is required" in result.stderr
  assert "Traceback" not in result.stderr


def test_evaluate_command_scores_a_trained_checkpoint(tmp_path):
  data_dir, _, cache = toolkit.cached_tiny_classifier(tmp_path)
  workdir = str(tmp_path / "run")
  loop.run(toolkit.tiny_config(data_dir, num_steps=2, classifier_dir=cache), workdir)
  result = toolkit.run_command(
      [sys.executable, "-m", "jaxgan.evaluate", f"--workdir={workdir}",
       f"--classifier_dir={cache}", "--eval_num_samples=50"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  with open(evaluation.results_path(workdir, 2)) as f:
    results = json.load(f)
  assert results["step"] == 2 and results["num_samples"] == 50
  for key in ("fid", "kid", "inception_score", "parzen_ll", "modes_covered"):
    assert math.isfinite(results[key]), key
  [printed] = [json.loads(line) for line in result.stdout.splitlines()
               if line.startswith("{")]
  assert printed["fid"] == results["fid"]


# --------------------------------------------------------------------------- bench
BENCH_FIELDS = {"name", "batch_size", "steps_per_call", "members", "steps_per_s",
                "compile_s", "startup_s", "peak_rss_mb", "gflop_per_step", "gflop_s",
                "matmul_gflop_s", "matmul_share", "ceiling_steps_per_s",
                "startup_phases", "profile"}
STARTUP_PHASES = {"imports_s", "data_s", "compile_s", "init_s", "first_step_s"}


def check_bench(stdout: str, profile_dir: str) -> None:
  """The JSON row of `python -m jaxgan.bench --json --cases=mlp --batch_size=8
  --profile_dir=DIR` has every field, sane values and a profile summary. Called by
  test_readme_commands.py on the README's bench command (the suite's one bench run: a
  run measures the machine's matmul rate and compiles in a child process, ~20 s)."""
  [row] = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
  assert BENCH_FIELDS <= set(row), BENCH_FIELDS - set(row)
  assert row["name"] == "mlp" and row["batch_size"] == 8
  # The rate is the median of the rounds' rates, each the median of its timed repeats
  # (a rate made up or read from the wrong field fails here), and the FLOP rate is it
  # times XLA's count.
  assert row["steps_per_s"] == pytest.approx(
      statistics.median(row["steps_per_s_rounds"]), abs=1e-3)
  assert row["steps_per_s_rounds"][-1] == pytest.approx(
      statistics.median(row["steps_per_s_repeats"]), abs=0.01)
  assert row["gflop_s"] == pytest.approx(row["steps_per_s"] * row["gflop_per_step"],
                                         abs=0.06)
  assert min(row["steps_per_s_repeats"]) > 0
  assert row["compile_s"] > 0 and row["peak_rss_mb"] > 50
  assert row["startup_s"] >= row["compile_s"]
  # XLA's count for mlp: 1.248 GFLOP at batch 64, scaled to batch 8.
  assert 0.1 < row["gflop_per_step"] < 0.3
  assert len(row["steps_per_s_repeats"]) == 2
  assert set(row["startup_phases"]) == STARTUP_PHASES
  assert sum(row["startup_phases"].values()) <= row["startup_s"] + 0.05
  # The profile: the compile trace has XLA's phases, the steps trace per-kernel events.
  with open(row["profile"]) as f:
    summary = f.read()
  compiled_kernels = [l for l in summary.splitlines() if "FusionCompiler::Compile" in l]
  assert compiled_kernels and int(compiled_kernels[0].split("x")[-1]) > 10, summary
  kernel_lines = summary.split("Kernel time per step")[1].splitlines()[1:]
  assert len(kernel_lines) >= 3 and float(kernel_lines[-1].split()[-1]) > 0, summary
  for sub in ("compile", "steps"):
    assert os.path.isdir(os.path.join(profile_dir, "mlp", sub, "plugins", "profile"))


def test_bench_helpshort_lists_its_flags_without_importing_jax():
  result = toolkit.run_command(
      [sys.executable, "-X", "importtime", "-m", "jaxgan.bench", "--helpshort"],
      timeout=120)
  assert result.returncode in (0, 1), result.stderr[-2000:]  # absl's help exits 1.
  for flag in ("--cases:", "--torch:", "--rounds:", "--profile_dir:"):
    assert flag in result.stdout, flag
  imported = imported_modules(result.stderr)
  assert "jaxgan.cli.bench" in imported and not {"jax", "flax"} & imported


@pytest.mark.parametrize("flag, message", [
    ("--cases=nope", "--cases: unknown ['nope']"),
    ("--repeats=0", "--repeats=0: expected an integer >= 1"),
])
def test_bench_rejects_bad_flags(flag, message):
  result = toolkit.run_command([sys.executable, "-m", "jaxgan.bench", flag], timeout=120)
  assert result.returncode == EXIT_USAGE
  assert message in result.stderr
  assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- figure1
def data_samples(n: int = 10_000) -> np.ndarray:
  return np.random.default_rng(1).normal(2.0, 0.5, n)


def test_figure1_check_fails_for_d_at_one_half_with_a_collapsed_g():
  # D(x) = 1/2 exactly, but G puts everything at 0: W1 = mean |x| of the data (all > 0).
  data = data_samples()
  got = figure1.figure1_checks(np.full(10_000, 0.5), np.zeros(10_000), data)
  assert got["d_half"] and got["mean_abs_d_minus_half"] == 0.0
  assert got["g_w1"] == pytest.approx(np.mean(np.abs(data)))
  assert not got["g_matches"] and not got["ok"]
  narrow = np.random.default_rng(2).normal(0.0, 0.1, 10_000)
  assert not figure1.figure1_checks(np.full(10_000, 0.5), narrow, data)["ok"]


def test_figure1_check_passes_for_d_at_one_half_with_g_equal_to_p_data():
  g_samples = np.random.default_rng(3).normal(2.0, 0.5, 10_000)
  got = figure1.figure1_checks(np.full(10_000, 0.5), g_samples, data_samples())
  assert got["d_half"] and got["g_matches"] and got["ok"]
  assert got["g_w1"] < 0.05  # Two samples of one distribution.


def test_figure1_check_fails_for_d_far_from_one_half_with_a_perfect_g():
  data = data_samples()
  got = figure1.figure1_checks(np.full(10_000, 0.9), data.copy(), data)
  assert got["mean_abs_d_minus_half"] == pytest.approx(0.4)
  assert got["g_w1"] == 0.0 and got["g_matches"]
  assert not got["d_half"] and not got["ok"]
