"""The bench's PyTorch side (`python -m jaxgan.bench --torch=PYTHON`,
jaxgan/benchmark/torch_loops.py) and how the rounds are combined (jaxgan.benchmark.compare).

torch is no jaxgan requirement but a test requirement (requirements-test.txt, which
README's test command installs): the tests that run the loops take the first
interpreter that imports torch of JAXGAN_TORCH_PYTHON, this one, and
../torch-venv/bin/python beside the checkout; the rest need no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import toolkit
from jaxgan.benchmark import cases, compare

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CANDIDATES = [os.environ.get("JAXGAN_TORCH_PYTHON", ""), sys.executable,
              os.path.join(os.path.dirname(ROOT), "torch-venv", "bin", "python")]
TORCH_PYTHON = next((p for p in CANDIDATES if p and os.path.exists(p)
                     and compare.torch_problem(p) is None), None)
needs_torch = pytest.mark.skipif(TORCH_PYTHON is None,
                                 reason="no interpreter that imports torch")


def test_torch_problem_names_why():
  assert compare.torch_problem("/nonexistent/python")
  # This interpreter imports torch or not; either way the answer is a line or None.
  problem = compare.torch_problem(sys.executable)
  assert problem is None or isinstance(problem, str)


def test_every_case_with_torch_loops_exists():
  assert set(cases.TORCH_LOOPS) <= set(cases.CASES)
  assert set(cases.SINGLE) <= set(cases.CASES) and set(cases.SINGLE.values()) <= set(
      cases.CASES)
  assert all("ring" in c for c in cases.CASES if c.startswith("ring"))
  assert {"ring", "ring_pop8", "ring_pop32"} <= set(cases.CASES)
  loops = {loop for case_loops in cases.TORCH_LOOPS.values() for loop in case_loops}
  assert set(cases.LOOPS_NEEDING_DATA) <= loops


def test_the_torch_loops_ship_in_the_package_and_import_no_jaxgan():
  # `pip install .` ships what is inside the package; the interpreter that runs the
  # script has torch but need not have jaxgan or its requirements.
  import ast

  import jaxgan
  package = os.path.dirname(os.path.abspath(jaxgan.__file__))
  assert os.path.commonpath([package, compare.TORCH_SCRIPT]) == package
  with open(compare.TORCH_SCRIPT) as f:
    tree = ast.parse(f.read())
  imported = {alias.name.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.Import) for alias in node.names}
  imported |= {node.module.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module}
  assert "torch" in imported and "jaxgan" not in imported


def _row(name, rate, gflop=1.0, **extra):
  return {"name": name, "steps_per_s": rate, "gflop_per_step": gflop, **extra}


def test_combine_takes_medians_and_per_round_ratios():
  rounds = [
      {"mlp": _row("mlp", 10.0, torch_runs={"tuned": {"it_per_s": 5.0}}),
       "pop8": _row("pop8", 5.0)},
      {"mlp": _row("mlp", 20.0, torch_runs={"tuned": {"it_per_s": 5.0}}),
       "pop8": _row("pop8", 30.0)},
      {"mlp": _row("mlp", 30.0, torch_runs={"tuned": {"error": "x"}}),
       "pop8": _row("pop8", 30.0)},
  ]
  rows = {r["name"]: r for r in compare.combine(rounds, matmul=100.0)}
  assert rows["mlp"]["steps_per_s"] == 20.0
  # Ratios only from rounds where the loop ran: 10/5 and 20/5.
  assert rows["mlp"]["torch"]["tuned"]["ratio"] == 3.0
  assert rows["mlp"]["torch"]["tuned"]["it_per_s"] == 5.0
  assert rows["mlp"]["torch"]["tuned"]["matmul_share"] == 0.05
  assert rows["pop8"]["vs_single"] == {"case": "mlp", "ratio": 1.0}  # 0.5, 1.5, 1.0.


def test_combine_without_torch_has_no_torch_column():
  rows = compare.combine([{"mlp": _row("mlp", 10.0)}, {"mlp": _row("mlp", 12.0)}], 100.0)
  assert rows[0]["steps_per_s"] == 11.0 and "torch" not in rows[0]


def _loop(loop: str, data_dir: str = "") -> dict:
  out = subprocess.run([TORCH_PYTHON, compare.TORCH_SCRIPT, f"--loop={loop}",
                        f"--data_dir={data_dir}", "--steps=2", "--repeats=1", "--warmup=1",
                        "--threads=1", "--batch_size=8", "--memory_format=nchw"],
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  [row] = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
  return row


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
  rng = np.random.default_rng(0)
  return toolkit.write_idx_dir(
      tmp_path_factory.mktemp("fashion-mnist"), rng.integers(0, 256, (64, 28, 28)),
      np.arange(64) % 10, rng.integers(0, 256, (16, 28, 28)), np.arange(16) % 10)


@needs_torch
@pytest.mark.parametrize("loop", ["published", "tuned", "dcgan28", "dcgan32"])
def test_torch_loops_run(loop, idx_dir):
  row = _loop(loop, idx_dir)
  assert row["loop"] == loop and row["it_per_s"] > 0 and row["threads"] == 1
  assert row["batch_size"] == 8 and row["pipeline"]


PARAM_COUNTS = """
import json, sys
sys.path.insert(0, {script_dir!r})
import torch_loops as t
counts = {{}}
for side, shape in ((28, (1, 28, 28)), (32, (3, 32, 32))):
  g, d = t.DCGANGenerator(shape), t.DCGANDiscriminator(shape)
  counts[side] = [sorted(tuple(p.shape) for p in m.parameters()) for m in (g, d)]
counts["mlp"] = [sorted(tuple(p.shape) for p in m.parameters())
                 for m in (t.mlp_generator(), t.mlp_discriminator(True))]
print(json.dumps(counts))
"""


def _sizes(tree) -> list[int]:
  import jax
  return sorted(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@needs_torch
def test_torch_models_have_jaxgan_layer_shapes():
  """The PyTorch G and D have the parameter sizes of jaxgan's (BatchNorm's scale and
  offset as torch's weight and bias), so the loops time the same layers."""
  import dataclasses

  import jax

  from jaxgan.config import Config
  from jaxgan.state import make_gan
  out = subprocess.run(
      [TORCH_PYTHON, "-c",
       PARAM_COUNTS.format(script_dir=os.path.dirname(compare.TORCH_SCRIPT))],
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  torch_shapes = json.loads(out.stdout)
  for key, model, shape in (("28", "dcgan", (28, 28, 1)), ("32", "dcgan", (32, 32, 3)),
                            ("mlp", "mlp", (28, 28, 1))):
    gan = make_gan(dataclasses.replace(Config(), model=model), shape)
    z = np.zeros((2, 100), np.float32)
    gv = jax.eval_shape(gan.generator.init, jax.random.PRNGKey(0), z)
    dv = jax.eval_shape(gan.discriminator.init, jax.random.PRNGKey(0),
                        np.zeros((2,) + shape, np.float32))
    for tree, want in ((gv["params"], torch_shapes[key][0]),
                       (dv["params"], torch_shapes[key][1])):
      assert _sizes(tree) == sorted(int(np.prod(s)) for s in want), (key, model)
