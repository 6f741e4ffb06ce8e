"""Every command README.md shows runs as written.

The commands are read from README.md's fenced code blocks (lines starting with
`python -m jaxgan.`, backslash continuations joined, shell comments dropped) and run in
README order, from the repository (so experiments/*.flags resolve), as subprocesses.
Only what keeps them offline, small and out of the repository is changed:
  * outputs go to a temporary folder: a `runs/...` path, and any other --workdir, --out
    or --profile_dir;
  * a --samples file (`jaxgan.evaluate --samples=F`) is written in the temporary
    folder: 32 PyTorch-GAN-style samples (float32 in [-1, 1], [N, 1, 28, 28]);
  * data: every --data_dir is replaced by a tiny Fashion-MNIST-shaped IDX folder named
    'fashion-mnist' (28x28, 10 labels), and a training command that would read tfds
    data gets it added (not one on a toy dataset);
  * each program gets a small workload appended (a later flag wins): main 2 steps
    (evaluation, where the command asks for it, on 20 samples without Parzen), the
    classifier 1 epoch, evaluate 20 samples, bench 2 steps of mlp at batch 8 with a
    profile (whose JSON and profile are checked: the suite's one bench run), figure1
    20 steps;
  * the classifier cache and the compilation cache are temporary / the tests' own.
Each command must exit 0 without a traceback; figure1 may exit 1 (its check needs the
full run) once it has printed both checks.
"""

from __future__ import annotations

import os
import re
import shlex
import sys

import numpy as np
import pytest

import toolkit

README = os.path.join(toolkit.REPO, "README.md")
PREFIX = "python -m jaxgan."
OUTPUT_FLAGS = ("workdir", "out", "profile_dir")
EVAL_FLAGS = ["--eval_num_samples=20", "--noeval_parzen"]
WORKLOAD = {
    "main": ["--num_steps=2", "--log_every=1", "--sample_every=2",
             "--checkpoint_every=2"],
    "classifier": ["--epochs=1"],
    "evaluate": EVAL_FLAGS,
    # The bench also writes a profile here: its fields are checked (test_cli.check_bench).
    "bench": ["--steps=2", "--repeats=2", "--cases=mlp", "--batch_size=8", "--json"],
    "figure1": ["--steps=20", "--d_only_steps=5"],
}


def readme_commands(path: str = README) -> list[str]:
  """The `python -m jaxgan.*` lines of the fenced code blocks, continuations joined."""
  with open(path) as f:
    text = f.read()
  commands = []
  for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S):
    for line in block.replace("\\\n", " ").splitlines():
      line = line.strip()
      if line.startswith(PREFIX):
        commands.append(line)
  return commands


def flag_value(args: list[str], name: str) -> str | None:
  """The last value of --name in args, flagfiles (relative to the repository) expanded
  in place."""
  value = None
  for arg in args:
    if arg.startswith("--flagfile="):
      with open(os.path.join(toolkit.REPO, arg.split("=", 1)[1])) as f:
        lines = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
      value = flag_value(lines, name) or value
    elif arg.startswith(f"--{name}="):
      value = arg.split("=", 1)[1]
  return value


def rewrite(command: str, tmp: str, data_dir: str, classifier_dir: str) -> list[str]:
  """The argv to run for a README command (see the module docstring)."""
  words = shlex.split(command, comments=True)
  program = words[2].removeprefix("jaxgan.")
  args = []
  for arg in words[3:]:
    name, _, value = arg.lstrip("-").partition("=")
    if arg.startswith("--") and value:
      if value.startswith("runs/") or (name in OUTPUT_FLAGS and not
                                        value.startswith(tmp)):
        value = os.path.join(tmp, "outputs", value)
      if name == "data_dir":
        value = data_dir
      if name == "samples":
        value = write_samples(os.path.join(tmp, "samples", os.path.basename(value)))
      arg = f"--{name}={value}"
    args.append(arg)
  extra = list(WORKLOAD.get(program, []))
  if program == "main":
    dataset = flag_value(args, "dataset") or "mnist"
    if flag_value(args, "data_dir") is None and not dataset.startswith("toy_"):
      extra.append(f"--data_dir={data_dir}")
    if flag_value(args, "eval_every"):
      extra += EVAL_FLAGS + [f"--classifier_dir={classifier_dir}"]
    extra.append(f"--compilation_cache_dir={toolkit.JAX_CACHE}")
  if program in ("classifier", "evaluate"):
    extra.append(f"--classifier_dir={classifier_dir}")
  if program == "bench":
    extra.append(f"--profile_dir={os.path.join(tmp, 'profile')}")
  return [sys.executable, "-m", f"jaxgan.{program}", *args, *extra]


def write_samples(path: str) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  rng = np.random.default_rng(0)
  np.save(path, rng.uniform(-1, 1, (32, 1, 28, 28)).astype(np.float32))
  return path


COMMANDS = readme_commands()


def test_the_readme_shows_commands():
  programs = {c.split()[2] for c in COMMANDS}
  assert {"jaxgan.main", "jaxgan.evaluate"} <= programs, COMMANDS


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
  """A temporary folder for the outputs, the tiny data and the classifier cache."""
  tmp = tmp_path_factory.mktemp("readme")
  rng = np.random.default_rng(0)
  data_dir = toolkit.write_idx_dir(
      tmp / "fashion-mnist", rng.integers(0, 256, (256, 28, 28)), np.arange(256) % 10,
      rng.integers(0, 256, (64, 28, 28)), np.arange(64) % 10)
  return {"tmp": str(tmp), "data_dir": data_dir,
          "classifier_dir": str(tmp / "classifiers")}


def in_the_chain(index: int, commands: list[str] = COMMANDS) -> bool:
  """Whether command `index` writes what a later one reads or reads what an earlier one
  wrote: the classifier, evaluate and plot commands, a training run that evaluates (it
  reads the classifier), and a training run whose --workdir a later command names."""
  words = shlex.split(commands[index], comments=True)
  program = words[2].removeprefix("jaxgan.")
  workdir = flag_value(words[3:], "workdir")
  read_later = workdir is not None and any(
      flag_value(shlex.split(c, comments=True)[3:], "workdir") == workdir
      for c in commands[index + 1:])
  return program in ("classifier", "evaluate", "plot") or read_later or (
      program == "main" and flag_value(words[3:], "eval_every") is not None)


# Later commands read what earlier ones wrote (evaluate the run that main trained, with the
# classifier that the classifier command trained): one xdist worker runs those, in README
# order (pyproject.toml's addopts: --dist=loadgroup); the others go to any worker.
@pytest.mark.parametrize("command", [
    pytest.param(c, id=f"{i:02d}-{c.split()[2]}",
                 marks=[pytest.mark.xdist_group("readme")] if in_the_chain(i) else [])
    for i, c in enumerate(COMMANDS)])
def test_readme_command_runs(command, workspace):
  argv = rewrite(command, workspace["tmp"], workspace["data_dir"],
                 workspace["classifier_dir"])
  result = toolkit.run_command(argv, timeout=300)
  output = result.stdout + result.stderr
  shown = f"{shlex.join(argv)}\n{output[-3000:]}"
  assert "Traceback" not in output, shown
  if argv[2] == "jaxgan.figure1" and result.returncode == 1:
    assert "p_g = p_data:" in result.stdout, shown  # Ran; 20 steps do not converge.
  else:
    assert result.returncode == 0, shown
  if argv[2] == "jaxgan.bench":  # The one bench run of the suite checks its report.
    from test_cli import check_bench
    check_bench(result.stdout, os.path.join(workspace["tmp"], "profile"))
