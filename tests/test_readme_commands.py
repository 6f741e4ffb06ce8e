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
Each command must exit 0 without a traceback (figure1 may exit 1, which its check needs
the full run to pass, once it has printed both checks) and leave the files and print the
lines README.md promises for it: `check_<program>` below, each naming what it checks.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import shlex
import sys

import numpy as np
import pytest

import toolkit

README = os.path.join(toolkit.REPO, "README.md")
PREFIX = "python -m jaxgan."
# Outputs, and inputs an earlier command wrote there (--ref_stats: an earlier --save_stats).
OUTPUT_FLAGS = ("workdir", "out", "profile_dir", "save_stats", "ref_stats")
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


def flag_values(args: list[str], name: str) -> list[str]:
  """Every value of a repeated flag (--sweep) in args, flagfiles expanded in place."""
  values = []
  for arg in args:
    if arg.startswith("--flagfile="):
      with open(os.path.join(toolkit.REPO, arg.split("=", 1)[1])) as f:
        values += flag_values([l.strip() for l in f if l.strip()
                               and not l.lstrip().startswith("#")], name)
    elif arg.startswith(f"--{name}="):
      values.append(arg.split("=", 1)[1])
  return values


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
        value = write_samples(os.path.join(tmp, "samples", os.path.basename(value)),
                              inception="--feature_network=inception" in words)
      if name == "inception_weights":
        value = inception_weights(tmp)
      arg = f"--{name}={value}"
    args.append(arg)
  extra = list(WORKLOAD.get(program, []))
  if "--feature_network=inception" in words:  # 299x299 per image: a few images.
    extra = [f"--eval_num_samples={INCEPTION_SAMPLES}"]
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


INCEPTION_SAMPLES = 4


def write_samples(path: str, inception: bool = False) -> str:
  """PyTorch-GAN's tanh output; for the Inception commands uint8 RGB images (as
  pytorch-fid reads PNGs), a different draw per file."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  rng = np.random.default_rng(len(os.path.basename(path)) + ord(path[-5]))
  if inception:
    np.save(path, rng.integers(0, 256, (INCEPTION_SAMPLES, 32, 32, 3), dtype=np.uint8))
  else:
    np.save(path, rng.uniform(-1, 1, (32, 1, 28, 28)).astype(np.float32))
  return path


def inception_weights(tmp: str) -> str:
  """Random weights in the weights file's format, written once per workspace (the real
  file is not downloaded)."""
  path = os.path.join(tmp, "random_inception.pth")
  if not os.path.exists(path):
    toolkit.write_random_inception_weights(path)
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
  program = argv[2].removeprefix("jaxgan.")
  if program == "figure1" and result.returncode == 1:
    assert "p_g = p_data:" in result.stdout, shown  # Ran; 20 steps do not converge.
  else:
    assert result.returncode == 0, shown
  with toolkit.on_failure_say(shown):
    CHECKS[program](argv[3:], result, workspace)


# ------------------------------------------------------------------ what README promises
# Each check reads the rewritten argv (outputs in the temporary folder, the WORKLOAD
# appended), the finished process and the workspace.
LOSSES = {"d_loss", "g_loss", "d_real", "d_fake"}
# "FID, KID, Inception Score, modes, Parzen, and improved precision/recall ... with
# density/coverage" (README, Evaluate).
EVAL_METRICS = ("fid", "kid", "inception_score", "modes_covered", "precision", "recall",
                "density", "coverage")
TOY_METRICS = {"modes_covered", "high_quality_pct", "reverse_kl"}


def check_png(path: str) -> None:
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"


def check_eval_results(path: str, args: list[str]) -> dict:
  """An evaluation's JSON: every metric README names, finite; Parzen only skipped when
  the command said --noeval_parzen (the WORKLOAD does: it is the slow one)."""
  with open(path) as f:
    results = json.load(f)
  for key in EVAL_METRICS:
    assert math.isfinite(results[key]), (key, results[key])
  parzen = results["parzen_ll"]
  assert (parzen is None) == ("--noeval_parzen" in args), parzen
  assert results["num_samples"] == int(flag_value(args, "eval_num_samples"))
  return results


def sweep_grid(args: list[str]) -> dict[str, list[str]]:
  """--sweep=name=v1,v2,... flags (flagfiles too) as {name: [values]}, in order."""
  grid = {}
  for spec in flag_values(args, "sweep"):
    name, _, values = spec.partition("=")
    grid[name] = values.split(",")
  return grid


def check_main(args, result, workspace):
  """README, Train: the workdir receives metrics.jsonl, TensorBoard event files,
  samples/step_<N>.png, checkpoints/ and config.json; data from --data_dir is named after
  its folder. Sweep: per-member records, samples/member_<i>/, eval/member_<i>/, one
  population checkpoint, sweep_results.csv, sweep_summary.csv, sweep_plot.png, and a
  printed ranking and error bars. --eval_every logs eval/<name> in metrics.jsonl; toy
  data logs its mode coverage, sample quality and reverse KL."""
  workdir = flag_value(args, "workdir")
  steps = int(flag_value(args, "num_steps"))
  toy = (flag_value(args, "dataset") or "").startswith("toy_")
  evaluated = flag_value(args, "eval_every") is not None
  grid = sweep_grid(args)
  hparams = [dict(zip(grid, [float(v) for v in values]))
             for values in itertools.product(*grid.values())]
  members = range(len(hparams)) if grid else [None]

  with open(os.path.join(workdir, "config.json")) as f:
    saved = json.load(f)
  assert saved["resolved_num_steps"] == steps
  if flag_value(args, "data_dir"):
    assert saved["data_name"] == "fashion_mnist"  # The folder fashion-mnist.
  assert toolkit.checkpoint_steps(workdir) == [steps]  # One checkpoint, all members.
  [events] = [n for n in os.listdir(workdir) if n.startswith("events.out.tfevents.")]
  with open(os.path.join(workdir, events), "rb") as f:
    assert b"d_loss" in f.read()  # A scalar's tag, as the event protocol stores it.

  records = toolkit.read_metrics(workdir)
  losses = [r for r in records if LOSSES <= set(r)]
  assert [(r["step"], r.get("member")) for r in losses] == [
      (s, m) for s in range(1, steps + 1) for m in members]  # --log_every=1.
  final = {m: {} for m in members}  # Each member's records of the last step, merged.
  for r in records:
    if r["step"] == steps:
      final[r.get("member")].update(r)
  for m in members:
    if grid:
      assert {k: final[m][k] for k in grid} == hparams[m]
    if toy:
      assert TOY_METRICS <= set(final[m]), final[m]
    if evaluated:
      assert {f"eval/{k}" for k in EVAL_METRICS} <= set(final[m]), final[m]
    sub = "" if m is None else f"member_{m}"
    check_png(os.path.join(workdir, "samples", sub, f"step_{steps}.png"))
    if evaluated:
      check_eval_results(os.path.join(workdir, "eval", sub, f"step_{steps}.json"), args)
  if grid:
    check_sweep_results(workdir, grid, hparams, toy, evaluated, result.stdout)


def check_sweep_results(workdir, grid, hparams, toy, evaluated, stdout):
  # The default ranking metric: FID when evaluated, modes covered on toy data.
  metric, lower_is_better = ("eval/fid", True) if evaluated else ("modes_covered", False)
  assert evaluated or toy
  rows = toolkit.read_results(workdir)
  assert list(rows[0])[:len(grid) + 3] == ["rank", "member", *grid, "status"]
  assert [r["rank"] for r in rows] == [str(i + 1) for i in range(len(hparams))]
  assert sorted(int(r["member"]) for r in rows) == list(range(len(hparams)))
  for r in rows:
    assert r["status"] == "ok"
    assert {k: float(r[k]) for k in grid} == hparams[int(r["member"])]
  ranked = [float(r[metric]) for r in rows]
  assert ranked == sorted(ranked, reverse=not lower_is_better), ranked
  # Error bars over the seeds of every other swept setting.
  others = [k for k in grid if k != "seed"]
  seeds = len(grid.get("seed", [None]))
  with open(os.path.join(workdir, "sweep_summary.csv")) as f:
    summary = list(csv.DictReader(f))
  assert list(summary[0]) == [*others, "metric", "mean", "std", "n", "healthy",
                              "diverged", "min", "max"]
  groups = [r for r in summary if r["metric"] == metric]
  assert sorted(tuple(float(r[k]) for k in others) for r in groups) == sorted(
      set(tuple(float(v) for v in values)
          for values in itertools.product(*(grid[k] for k in others))))
  assert all(int(r["n"]) == seeds for r in groups)
  check_png(os.path.join(workdir, "sweep_plot.png"))
  better = "lower" if lower_is_better else "higher"
  assert f"Sweep of {len(hparams)} members, ranked by {metric} ({better} is better)" in (
      stdout)
  table = stdout.split("; table: ")[1].split("mean ± std (ddof 1) over seeds")[0]
  assert len(table.strip().splitlines()) == 1 + 1 + len(hparams)  # Path, header, rows.
  labels = re.findall(r"^  (.*) \((\d+) seeds\):$", stdout, flags=re.M)
  assert len(labels) == len(groups) and all(int(n) == seeds for _, n in labels), labels


def check_classifier(args, result, workspace):
  """README, Evaluate: the classifier of the data is trained once and cached (the test's
  --classifier_dir) under the data's name."""
  cache = os.path.join(workspace["classifier_dir"], "fashion_mnist")
  assert os.path.isfile(os.path.join(cache, "classifier.json"))
  assert "classifier for fashion_mnist: test accuracy" in result.stdout
  assert f"saved to {cache}" in result.stdout


def check_evaluate(args, result, workspace):
  """README, Evaluate: --workdir=W writes every metric to W/eval/step_<N>.json (N: the
  latest checkpoint); --samples=F scores F the same way into F's folder as
  <name>_eval.json (or --out)."""
  samples = flag_value(args, "samples")
  if flag_value(args, "feature_network") == "inception":
    return check_inception(args, result)
  if samples is None:
    workdir = flag_value(args, "workdir")
    step = toolkit.checkpoint_steps(workdir)[-1]
    path = os.path.join(workdir, "eval", f"step_{step}.json")
    assert check_eval_results(path, args)["step"] == step
  else:
    path = os.path.join(flag_value(args, "out") or os.path.dirname(samples),
                        os.path.splitext(os.path.basename(samples))[0] + "_eval.json")
    results = check_eval_results(path, args)
    assert results["samples"]["layout"] == "NCHW"  # torch's layout, read by shape.
    assert results["samples"]["range"] == [-1, 1]  # --samples_range=-1,1.
  printed = json.loads(result.stdout.splitlines()[0])
  with open(path) as f:
    assert printed["fid"] == json.load(f)["fid"]
  assert f"wrote {path}" in result.stdout


def check_inception(args, result):
  """README, FID that papers can compare: --save_stats writes mu [2048] and sigma;
  --ref_stats scores the samples against them into <name>_eval.json, with the protocol."""
  samples, saved = flag_value(args, "samples"), flag_value(args, "save_stats")
  if saved is not None:
    with np.load(saved) as f:
      assert f["mu"].shape == (2048,) and f["sigma"].shape == (2048, 2048)
    assert f"wrote {saved}" in result.stdout
  if flag_value(args, "ref_stats") is not None:
    path = os.path.join(os.path.dirname(samples),
                        os.path.splitext(os.path.basename(samples))[0] + "_eval.json")
    with open(path) as f:
      results = json.load(f)
    assert math.isfinite(results["fid"]) and results["fid"] > 0
    assert results["protocol"]["weights"] == "random_inception.pth"
    assert results["protocol"]["reference"]["num_samples"] == INCEPTION_SAMPLES
    assert f"wrote {path}" in result.stdout


def check_plot(args, result, workspace):
  """README, Evaluate: losses and D(x)/D(G(z)) (and metrics, when evaluated during
  training) -> W/plots/."""
  plots = os.path.join(flag_value(args, "workdir"), "plots")
  for name in ("losses.png", "discriminator.png"):
    check_png(os.path.join(plots, name))
    assert f"wrote {os.path.join(plots, name)}" in result.stdout


def check_bench(args, result, workspace):
  """README, Performance: steps/s, compile and start-up seconds, peak RSS, the FLOP
  rate; --profile_dir's traces (the suite's one bench run checks its whole report)."""
  from test_cli import check_bench as check_report
  check_report(result.stdout, flag_value(args, "profile_dir"))


def check_figure1(args, result, workspace):
  """README, Figure 1: the picture at --out, both checks printed, exit 1 iff one
  fails."""
  check_png(flag_value(args, "out"))
  d_half = re.search(r"^D\(x\) -> 1/2: (yes|NO)$", result.stdout, flags=re.M)
  g_matches = re.search(r"^p_g = p_data: (yes|NO)$", result.stdout, flags=re.M)
  assert d_half and g_matches, result.stdout
  passed = d_half[1] == g_matches[1] == "yes"
  assert result.returncode == (0 if passed else 1)


CHECKS = {"main": check_main, "classifier": check_classifier, "evaluate": check_evaluate,
          "plot": check_plot, "bench": check_bench, "figure1": check_figure1}
