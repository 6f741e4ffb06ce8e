"""Population-based training (jaxgan.sweep.pbt): the decisions, the exchange, the lineage,
and the loop's guarantees for a PBT sweep (SIGKILL then resume is bit-identical with the
same lineage; a diverged member is replaced first).

The runs train toy_mlp on the ring, 4 members: lr_g 1e-3 or 1e9 (these two diverge at
once) by seed 0 or 1 (so that every member has its own run key); PBT every 10 steps ranks
the members by modes covered. One
uninterrupted reference run (in this process, a checkpoint at every round) serves every
run-level test; the kill test adds one subprocess and one resume in this process.
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.config import Config
from jaxgan.errors import ConfigError
from jaxgan.runtime import loop
from jaxgan.sweep import lineage, pbt, population

import toolkit

NUM_STEPS = 50
SWEEP = ("lr_g=1e-3,1e9", "seed=0,1")  # Members 2 and 3 diverge in their first steps.


def ring_config(**overrides) -> Config:
  base = dict(dataset="toy_ring8", model="toy_mlp", latent_dim=2, batch_size=16,
              num_steps=NUM_STEPS, log_every=1, sample_every=10, checkpoint_every=20,
              sweep=SWEEP, pbt_interval=10,
              pbt_perturb="0.5,2")
  return toolkit.tiny_config(**{**base, **overrides})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The uninterrupted run, checkpointed at every round (each holds the state the round
  left): its final state, metrics records and lineage rows."""
  workdir = str(tmp_path_factory.mktemp("pbt") / "reference")
  state = toolkit.host_tree(loop.run(ring_config(checkpoint_every=10,
                                                 max_checkpoints=100), workdir))
  return {"state": state, "workdir": workdir, "metrics": toolkit.read_metrics(workdir),
          "lineage": lineage.read_rows(workdir)}


# The tests that read the reference run share one xdist worker, so it is trained once.
ON_THE_REFERENCES_WORKER = pytest.mark.xdist_group("pbt_reference")


def like(reference):
  return jax.tree_util.tree_map(jnp.asarray, reference["state"])


# ------------------------------------------------------------------ the run
@ON_THE_REFERENCES_WORKER
def test_a_round_gives_each_replaced_member_its_parents_whole_state(reference):
  rows = reference["lineage"]
  assert sorted({int(r["step"]) for r in rows}) == [10, 20, 30, 40]  # Not the last step.
  moved = [r for r in rows if r["action"] != lineage.KEEP]
  assert moved, rows
  other_seeds = 0
  for r in moved:
    step, child, parent = int(r["step"]), int(r["member"]), int(r["parent"])
    saved = toolkit.restore_checkpoint(reference["workdir"], like(reference), step)
    mine, theirs = toolkit.member(saved, child), toolkit.member(saved, parent)
    lr = population.GETTERS["lr_g"]
    assert float(lr(mine)) == np.float32(float(r["lr_g_after"]))
    # A parent is a top member, which keeps its own state and value in the round: the
    # child's lr_g is the parent's times one of --pbt_perturb's factors.
    assert [float(np.float32(float(lr(theirs)) * f)) for f in (0.5, 2.0)].count(
        float(lr(mine))) == 1
    # Everything else is the parent's, bit for bit, but the run key: its own draws.
    same = population.SETTERS["lr_g"](mine, lr(theirs)).replace(rng=theirs.rng)
    toolkit.assert_trees_equal(same, theirs)
    # SWEEP's order: the seed varies fastest, so member m has seed m % 2.
    if child % 2 != parent % 2:
      assert not np.array_equal(mine.rng, theirs.rng)
      other_seeds += 1
    # Health travels with the state: a replaced member is healthy again.
    assert saved.health.diverged_at[child] == -1
  assert other_seeds  # Round 10: both diverged members take the one top member's state.
  for r in rows:
    if r["action"] == lineage.KEEP:
      assert r["lr_g_before"] == r["lr_g_after"] and r["parent"] == r["member"]


@ON_THE_REFERENCES_WORKER
def test_a_diverged_member_is_replaced_first_and_counted(reference):
  first = [r for r in reference["lineage"] if r["step"] == "10"]
  # The bottom fraction is one member (0.25 x 4), but both diverged members are
  # replaced, and no healthy one.
  assert [r["action"] for r in first] == [lineage.KEEP] * 2 + [
      lineage.REPLACE_DIVERGED] * 2
  assert [r["metric"] for r in first[2:]] == ["nan", "nan"]
  for m in (2, 3):
    # Its records stop when it diverges and resume once it holds a healthy state.
    steps = [r["step"] for r in reference["metrics"] if r.get("member") == m
             and "d_loss" in r]
    assert steps == [1] + list(range(11, NUM_STEPS + 1)), steps
    assert [r for r in reference["metrics"] if r.get("member") == m and "diverged" in r]
  assert all(r["status"] == "ok" for r in toolkit.read_results(reference["workdir"]))


@ON_THE_REFERENCES_WORKER
def test_sigkill_then_resume_is_bit_identical_with_the_same_lineage(reference, tmp_path,
                                                                    caplog):
  seed = random.randrange(2**32)
  rand = random.Random(seed)
  workdir = str(tmp_path / "killed")
  config = ring_config()
  with toolkit.on_failure_say(f"seed {seed}"):
    proc = toolkit.start(toolkit.main_command(workdir, config))
    # After the checkpoint of step 20 and, mostly, after the round of step 30 but before
    # the checkpoint of 40: the resume then decides round 30 again over its own row.
    toolkit.wait_for_logged_step(proc, workdir, rand.randrange(31, 39))
    time.sleep(rand.uniform(0, 0.03))
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode in (-signal.SIGKILL, 0), err[-2000:]
    saved = toolkit.checkpoint_steps(workdir)
    caplog.set_level(logging.INFO, logger="absl")
    caplog.clear()
    state = loop.run(config, workdir)
    toolkit.assert_resumed(caplog.text, saved[-1], workdir)
    toolkit.assert_trees_equal(state, reference["state"])
    assert lineage.read_rows(workdir) == reference["lineage"]
    assert toolkit.read_metrics(workdir) == reference["metrics"]


@ON_THE_REFERENCES_WORKER
def test_a_resume_drops_the_rounds_after_its_checkpoint(reference, tmp_path):
  # As if killed after the round of step 40, with no checkpoint after step 20; resumed
  # with --num_steps=20 (a shorter run is free on resume), so it trains nothing: no round
  # comes again to overwrite rounds 30 and 40, and the resume itself must drop them.
  workdir = str(tmp_path / "cut")
  shutil.copytree(reference["workdir"], workdir)
  for step in toolkit.checkpoint_steps(workdir):
    if step > 20:
      shutil.rmtree(os.path.join(workdir, "checkpoints", str(step)))
  loop.run(ring_config(checkpoint_every=10, max_checkpoints=100, num_steps=20), workdir)
  assert lineage.read_rows(workdir) == [r for r in reference["lineage"]
                                        if int(r["step"]) <= 20]


@ON_THE_REFERENCES_WORKER
def test_plot_draws_each_members_hyperparameters_and_metric(reference, tmp_path):
  from jaxgan.cli import plot
  # The lineage beside one metrics record: the figures other records would add cost
  # time and test nothing here.
  shutil.copy(os.path.join(reference["workdir"], lineage.LINEAGE_CSV), tmp_path)
  (tmp_path / "metrics.jsonl").write_text('{"step": 1, "member": 0, "d_loss": 1.0}\n')
  written = plot.draw(str(tmp_path), str(tmp_path / "plots"))
  assert str(tmp_path / "plots" / "pbt.png") in written
  assert os.path.getsize(tmp_path / "plots" / "pbt.png") > 10_000


# ------------------------------------------------------------------ decisions
def settings(**overrides) -> pbt.Settings:
  base = dict(interval=10, fraction=0.25, factors=(0.8, 1.2), resample=0.0, seed=0,
              sweep_metric="", values={"lr_g": (1e-4, 1e-3), "b1": (0.5, 0.9)})
  return pbt.Settings(**{**base, **overrides})


def current(num: int = 4) -> dict[str, np.ndarray]:
  return {"lr_g": np.float32([1e-4, 2e-4, 3e-4, 4e-4][:num]),
          "b1": np.float32([0.5, 0.6, 0.7, 0.99][:num])}


def test_the_worst_take_a_top_members_state_by_the_metrics_direction():
  fid = {0: {"eval/fid": 30.0}, 1: {"eval/fid": 10.0}, 2: {"eval/fid": 50.0},
         3: {"eval/fid": 20.0}}
  r = pbt.decide(settings(), 10, fid, [False] * 4, current())
  assert r.metric == "eval/fid" and r.parents.tolist() == [0, 1, 1, 3]
  modes = {0: {"modes_covered": 8.0, "high_quality_pct": 50.0},
           1: {"modes_covered": 8.0, "high_quality_pct": 90.0},
           2: {"modes_covered": 3.0, "high_quality_pct": 99.0},
           3: {"modes_covered": 8.0, "high_quality_pct": 10.0}}
  r = pbt.decide(settings(fraction=0.5), 10, modes, [False] * 4, current())
  assert r.metric == "modes_covered"
  assert r.replaced == [2, 3] and set(r.parents[[2, 3]].tolist()) <= {0, 1}


def test_every_diverged_member_is_replaced_before_any_healthy_one():
  scalars = {2: {"eval/fid": 5.0}, 3: {"eval/fid": 9.0}}
  r = pbt.decide(settings(), 10, scalars, [True, True, False, False], current())
  assert r.replaced == [0, 1] and r.parents.tolist() == [2, 2, 2, 3]
  assert [row["action"] for row in r.rows] == [lineage.REPLACE_DIVERGED] * 2 + [
      lineage.KEEP] * 2


def test_decisions_are_a_pure_function_of_seed_step_and_metrics():
  scalars = {i: {"eval/fid": float(v)} for i, v in enumerate([5, 4, 3, 2, 1, 6, 7, 8])}
  cur = {"lr_g": np.full(8, 1e-3, np.float32), "b1": np.full(8, 0.5, np.float32)}
  s = settings(factors=(0.5, 2.0))

  def outcome(seed, step):
    r = pbt.decide(pbt.Settings(**{**s.__dict__, "seed": seed}), step, scalars,
                   [False] * 8, cur)
    return r.parents.tolist(), r.values["lr_g"].tolist(), r.values["b1"].tolist()

  assert outcome(0, 10) == outcome(0, 10)
  assert len({str(outcome(0, step)) for step in range(10, 110, 10)}) > 1
  assert len({str(outcome(seed, 10)) for seed in range(10)}) > 1
  parents, lr, _ = outcome(0, 10)
  assert sorted(parents[i] for i in (5, 6, 7)) != [5, 6, 7]  # The worst two moved...
  moved = [i for i in range(8) if parents[i] != i]
  assert sorted(moved) == [6, 7] and all(parents[i] in (3, 4) for i in moved)
  assert all(lr[i] in (np.float32(5e-4), np.float32(2e-3)) for i in moved)


def test_resampling_draws_from_the_sweeps_values_and_clips_to_the_flags_range():
  scalars = {0: {"eval/fid": 1.0}, 1: {"eval/fid": 2.0}, 2: {"eval/fid": 3.0},
             3: {"eval/fid": 4.0}}
  r = pbt.decide(settings(resample=1.0), 10, scalars, [False] * 4, current())
  assert r.values["lr_g"][3] in np.float32([1e-4, 1e-3])
  assert r.values["b1"][3] in np.float32([0.5, 0.9])
  # b1 0.99 x 1.2 would leave [0, 1): clipped below 1.
  top = {3: {"eval/fid": 1.0}, 0: {"eval/fid": 9.0}, 1: {"eval/fid": 5.0},
         2: {"eval/fid": 5.0}}
  r = pbt.decide(settings(factors=(1.2,)), 10, top, [False] * 4, current())
  assert r.parents[0] == 3 and 0.99 < r.values["b1"][0] < 1.0
  assert r.values["lr_g"][0] == np.float32(float(np.float32(4e-4)) * 1.2)


def test_a_round_without_its_metric_is_refused():
  with pytest.raises(ConfigError, match="pbt_interval"):
    pbt.decide(settings(), 10, {0: {"d_loss": 1.0}}, [False] * 4, current())


def test_lineage_rows_of_later_rounds_are_dropped_and_a_round_is_written_once(tmp_path):
  workdir = str(tmp_path)
  row = lambda step, m: {"step": step, "member": m, "action": "keep", "parent": m,
                         "metric_name": "fid", "metric": "1", "parent_metric": "1",
                         "lr_g_before": "1", "lr_g_after": "1"}
  for step in (10, 20, 30):
    lineage.write_round(workdir, step, ["lr_g"], [row(step, 0), row(step, 1)])
  lineage.write_round(workdir, 20, ["lr_g"], [row(20, 0), row(20, 1)])  # A replay.
  assert [r["step"] for r in lineage.read_rows(workdir)] == ["10", "10", "20", "20"]
  lineage.write_round(workdir, 30, ["lr_g"], [row(30, 0), row(30, 1)])
  assert lineage.drop_rounds_after(workdir, 20) == 2
  assert [r["step"] for r in lineage.read_rows(workdir)] == ["10", "10", "20", "20"]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("overrides, flag", [
    (dict(sweep=()), "--pbt_interval=10 exchanges"),
    (dict(sweep=("lr_g=1e-4",)), "one member"),
    (dict(sample_every=4), "multiple of --sample_every=4"),
    (dict(dataset="mnist", eval_every=0), "--eval_every=0"),
    (dict(dataset="mnist", eval_every=3), "multiple of --eval_every=3"),
    (dict(sweep_metric="d_loss"), "--sweep_metric=d_loss is a training loss"),
    (dict(pbt_fraction=0.6), "--pbt_fraction=0.6"),
    (dict(pbt_perturb="0.8,x"), "--pbt_perturb='0.8,x'"),
    (dict(pbt_resample=1.5), "--pbt_resample=1.5"),
    (dict(pbt_interval=0, pbt_fraction=0.5), "--pbt_fraction=0.5 applies"),
])
def test_bad_pbt_flags_are_refused_naming_the_flag(overrides, flag):
  with pytest.raises(ConfigError) as e:
    ring_config(**overrides).validate()
  assert flag in str(e.value)


def test_a_bad_pbt_flag_exits_2_in_one_line(capsys):
  code, err = toolkit.run_main_in_process(
      ["--dataset=toy_ring8", "--sweep=lr_g=1e-4,1e-3", "--pbt_interval=10",
       "--sample_every=3", "--num_steps=30", "--workdir=/nonexistent/never"], capsys)
  assert code == 2 and "Traceback" not in err
  assert "--pbt_interval=10 must be a multiple of --sample_every=3" in err
