"""The population loop: per-member outputs, ranked results, exact resume."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import jax
import numpy as np
import pytest

from jaxgan import sweep
from jaxgan.errors import WorkdirError

from sweep_fixtures import read_results, tiny_config, tiny_idx_dir

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
  rows = read_results(workdir)
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


# --------------------------------------------------------------------------- toy data
@pytest.fixture(scope="module")
def toy_sweep(tmp_path_factory):
  """3 steps of two seeds on the 25-Gaussian grid, sampled (mode metrics) at step 3."""
  from jaxgan.config import Config
  cfg = Config(dataset="toy_grid25", model="toy_mlp", latent_dim=4, batch_size=16,
               num_steps=3, log_every=3, sample_every=3, checkpoint_every=0,
               sweep=("seed=0,1",), sweep_metric="high_quality_pct")
  workdir = str(tmp_path_factory.mktemp("toy_sweep") / "run")
  return cfg, workdir, sweep.run(cfg, workdir)


def test_toy_sweep_logs_each_members_mode_metrics_from_its_own_samples(toy_sweep):
  from jaxgan import population, toy
  from jaxgan.state import make_gan
  from jaxgan.steps import make_steps
  from jaxgan.train import SAMPLE_NOISE_STREAM
  cfg, workdir, state = toy_sweep
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    modes = [r for r in map(json.loads, f) if "modes_covered" in r]
  assert [(r["step"], r["member"], r["seed"]) for r in modes] == [(3, 0, 0), (3, 1, 1)]
  # What train.run computes for a single run with member i's seed and parameters.
  problem = toy.PROBLEMS["toy_grid25"]
  gan = make_gan(cfg, (1, 1, 2))
  sample = jax.jit(make_steps(cfg, gan, toy.TRAIN_SIZE).sample)
  expected = []
  for i, seed in enumerate((0, 1)):
    z = gan.sample_noise(jax.random.fold_in(jax.random.PRNGKey(seed),
                                            SAMPLE_NOISE_STREAM), toy.EVAL_SAMPLES)
    points = np.asarray(sample(population.member_state(state, i), z)).reshape(
        toy.EVAL_SAMPLES, 2)
    expected.append(toy.evaluate(problem, points))
  for record, want in zip(modes, expected):
    assert record["modes_covered"] == want["modes_covered"]
    assert record["high_quality_pct"] == pytest.approx(want["high_quality_pct"], abs=0.05)
  # The two seeds' values differ here, so a member swap would show.
  assert modes[0]["high_quality_pct"] != modes[1]["high_quality_pct"]
  for m in range(2):
    assert os.path.isfile(os.path.join(workdir, "samples", f"member_{m}", "step_3.png"))


def test_toy_sweep_ranks_by_a_mode_metric_higher_first(toy_sweep):
  _, workdir, _ = toy_sweep
  rows = read_results(workdir)
  hq = [float(r["high_quality_pct"]) for r in rows]
  assert hq == sorted(hq, reverse=True) and "modes_covered" in rows[0]


# --------------------------------------------------------------------------- steps_per_call
def test_population_steps_per_call_equals_single_dispatches():
  from jaxgan import data, population
  from jaxgan.state import make_gan
  from jaxgan.steps import make_steps
  import tempfile
  cfg = tiny_config(tiny_idx_dir(tempfile.mkdtemp(prefix="jaxgan_spc_")),
                    sweep=("lr_d=1e-4,3e-4",))
  members = population.make_members(cfg, cfg.sweep)
  ds = data.load_dataset(cfg.dataset, cfg.data_dir, "train")
  mesh = population.make_mesh((1, 1), jax.devices()[:1])
  gan = make_gan(cfg, ds.image_shape)
  steps = make_steps(cfg, gan, ds.num_examples,
                     constrain_batch=population.batch_constraint(mesh))
  images = population.place_dataset(ds.images, mesh)
  single = population.make_population_step(steps.train_step, mesh)
  multi = population.make_population_step(steps.train_step, mesh, steps_per_call=3)
  a = population.init_population(gan, members)
  b = population.init_population(gan, members)
  for _ in range(3):
    a, a_metrics = single(a, images)
  b, b_metrics = multi(b, images)
  np.testing.assert_array_equal(np.asarray(b.step), [3, 3])
  jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(a),
                         jax.device_get(b))
  np.testing.assert_array_equal(a_metrics["g_loss"], b_metrics["g_loss"])


def test_sweep_loop_with_steps_per_call_lands_on_every_event(finished, tmp_path):
  # 4 steps in calls of 3 with logs and checkpoints every 2: 0 -> 1 -> 2 -> 3 -> 4
  # one by one (no 3-step run fits before an event); 5 steps, log every 4: 0 -(3)-> 3
  # -> 4 -> 5. Same parameters at step 4 as the one-step-per-call population.
  cfg, _, final_state = finished
  spc = dataclasses.replace(cfg, steps_per_call=3, num_steps=5, log_every=4,
                            sample_every=0, checkpoint_every=4)
  workdir = str(tmp_path / "spc")
  sweep.run(spc, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert sorted({r["step"] for r in map(json.loads, f)}) == [4, 5]
  from jaxgan.checkpoint import Checkpoints
  ckpts = Checkpoints(os.path.join(workdir, "checkpoints"))
  assert ckpts.all_steps() == [4, 5]
  at4 = jax.device_get(ckpts.restore(final_state, 4))
  ckpts.close()
  jax.tree_util.tree_map(np.testing.assert_array_equal, at4, final_state)


def test_toy_table_summarises_a_sweeps_members(tmp_path):
  from jaxgan import toy_table
  run = tmp_path / "ring"
  run.mkdir()
  (run / "population.json").write_text("{}")
  lines = [{"step": 5, "member": 0, "seed": 0, "modes_covered": 1.0, "high_quality_pct": 10.0},
           {"step": 5, "member": 1, "seed": 1, "modes_covered": 2.0, "high_quality_pct": 50.0},
           {"step": 9, "member": 0, "seed": 0, "modes_covered": 4.0, "high_quality_pct": 20.0},
           {"step": 9, "member": 0, "seed": 0, "d_loss": 0.5},
           {"step": 9, "member": 1, "seed": 1, "modes_covered": 2.0, "high_quality_pct": 40.0}]
  (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
  table = toy_table.summarise(str(run))
  assert "| ring (sweep) | 2 | 9 | 3.0 ± 1.4 (4, 2) | 30.0 ± 14.1 |" in table


def test_a_conditional_sweep_is_refused_before_the_workdir_is_touched(tmp_path):
  from jaxgan.errors import ConfigError
  cfg = tiny_config(tiny_idx_dir(str(tmp_path / "data")), conditional=True,
                    sweep=("seed=0,1",))
  with pytest.raises(ConfigError, match="--conditional is not supported with --sweep"):
    sweep.run(cfg, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")
