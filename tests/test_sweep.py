"""The population loop: per-member outputs, ranked results, exact resume."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil

import jax
import numpy as np
import pytest

from jaxgan import sweep
from jaxgan.errors import WorkdirError

from sweep_fixtures import tiny_config, tiny_idx_dir

SPECS = ("lr_d=1e-4,3e-4", "seed=0,1")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A 4-step population of 4 members, checkpointed at steps 2 and 4."""
  root = tmp_path_factory.mktemp("sweep")
  cfg = tiny_config(tiny_idx_dir(str(root / "data")), num_steps=4, log_every=2,
                    sample_every=4, checkpoint_every=2, sweep=SPECS)
  workdir = str(root / "run")
  state = sweep.run(cfg, workdir)
  return cfg, workdir, jax.device_get(state)


def test_metrics_records_carry_member_index_and_hyperparameters(finished):
  _, workdir, _ = finished
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert [(r["step"], r["member"]) for r in records] == [
      (s, m) for s in (2, 4) for m in range(4)]
  assert [(r["lr_d"], r["seed"]) for r in records[:4]] == [
      (1e-4, 0), (1e-4, 1), (3e-4, 0), (3e-4, 1)]
  assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in records)


def test_each_member_gets_its_own_sample_grid(finished):
  _, workdir, _ = finished
  for m in range(4):
    assert os.path.isfile(os.path.join(workdir, "samples", f"member_{m}", "step_4.png"))


def test_results_table_ranks_members_by_the_metric(finished):
  _, workdir, _ = finished
  with open(os.path.join(workdir, sweep.RESULTS_CSV)) as f:
    rows = list(csv.DictReader(f))
  assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
  assert sorted(int(r["member"]) for r in rows) == [0, 1, 2, 3]
  g = [float(r["g_loss"]) for r in rows]
  assert g == sorted(g)
  # The table's values are the members' last logged values.
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    last = {r["member"]: r for r in map(json.loads, f) if r["step"] == 4}
  for r in rows:
    assert float(r["g_loss"]) == pytest.approx(last[int(r["member"])]["g_loss"])
    assert float(r["lr_d"]) == last[int(r["member"])]["lr_d"]
  assert os.path.isfile(os.path.join(workdir, sweep.PLOT_PNG))


def test_population_checkpoint_resumes_exactly(finished, tmp_path):
  cfg, workdir, final_state = finished
  resumed_dir = str(tmp_path / "resumed")
  shutil.copytree(workdir, resumed_dir)
  shutil.rmtree(os.path.join(resumed_dir, "checkpoints", "4"))  # Back to step 2.
  resumed = jax.device_get(sweep.run(cfg, resumed_dir))
  jax.tree_util.tree_map(np.testing.assert_array_equal, resumed, final_state)


def test_a_workdir_of_another_sweep_is_refused(finished):
  cfg, workdir, _ = finished
  other = dataclasses.replace(cfg, sweep=("lr_d=1e-4,5e-4", "seed=0,1"))
  with pytest.raises(WorkdirError, match="holds checkpoints of a different run"):
    sweep.run(other, workdir)


def test_rank_members_puts_diverged_members_last_and_respects_direction():
  from jaxgan.config import Config
  from jaxgan.population import make_members
  members = make_members(Config(num_steps=1), ["seed=0,1,2"])
  final = {"g_loss": np.array([0.5, np.nan, 0.2]), "d_real": np.array([0.1, 0.9, 0.5])}
  assert [r["member"] for r in sweep.rank_members(members, final, "g_loss")] == [2, 0, 1]
  assert [r["member"] for r in sweep.rank_members(members, final, "d_real")] == [1, 2, 0]


def test_entry_point_refuses_a_shape_flag_sweep_with_exit_2(tmp_path):
  import subprocess
  import sys
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run(
      [sys.executable, "-m", "jaxgan.main", "--num_steps=1", "--sweep=model=mlp,paper_mlp",
       f"--workdir={tmp_path / 'run'}"],
      env=dict(os.environ, PYTHONPATH=repo, JAX_PLATFORMS="cpu"), capture_output=True,
      text=True, timeout=300)
  assert result.returncode == 2
  assert "--model cannot be swept" in result.stderr
  assert "Traceback" not in result.stderr
  assert not os.path.exists(tmp_path / "run")
