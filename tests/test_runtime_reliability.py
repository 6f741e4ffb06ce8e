"""Reliability of the one training loop, for a single run and for a population alike:
exact resume after SIGKILL, preemption, divergence, workdir safety.

Every run trains the real `mlp` GAN on a tiny IDX folder (64 random 8x8 images), so a
step costs milliseconds; the population is two seeds of the same config. Subprocesses
(SIGKILL, SIGTERM, exit codes) share one persistent compilation cache.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import pytest

from jaxgan.errors import EXIT_DIVERGED, EXIT_PREEMPTED, Diverged, WorkdirError
from jaxgan.runtime import checkpoint, guard, loop, trainees, workdir as workdir_lib

import toolkit

NUM_STEPS = 60
KINDS = {"single": (), "population": ("seed=0,1",)}


def config_of(env, kind: str, **overrides):
  # toy_mlp compiles in half the time of mlp; the tests that need BatchNorm in the
  # state (G's) ask for model="mlp".
  base = dict(data_dir=env["data_dir"], model="toy_mlp", num_steps=NUM_STEPS,
              log_every=3, checkpoint_every=5, sweep=KINDS[kind])
  return toolkit.tiny_config(**{**base, **overrides})


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  root = tmp_path_factory.mktemp("reliability")
  return {"root": root, "data_dir": toolkit.tiny_idx_dir(str(root / "idx"))}


@pytest.fixture(scope="module", params=sorted(KINDS))
def reference(request, env):
  """An uninterrupted run of each kind: final state, metrics, checkpoints every 12."""
  kind = request.param
  workdir = str(env["root"] / f"reference_{kind}")
  config = config_of(env, kind, checkpoint_every=12, max_checkpoints=100)
  state = toolkit.host_tree(loop.run(config, workdir))
  return {"kind": kind, "state": state, "metrics": toolkit.read_metrics(workdir),
          "workdir": workdir, "config": config}


def final_state(workdir: str, reference, step: int | None = None):
  like = jax.tree_util.tree_map(jnp.asarray, reference["state"])
  return toolkit.restore_checkpoint(workdir, like, step)


# ------------------------------------------------------------------ crash-safe resume
def test_sigkill_at_random_points_then_resume_is_bit_identical(env, reference, caplog):
  seed = random.randrange(2**32)
  with toolkit.on_failure_say(f"seed {seed}"):
    kill_at_random_points_then_resume(env, reference, random.Random(seed), caplog)


def kill_at_random_points_then_resume(env, reference, rng, caplog):
  kind = reference["kind"]
  workdir = str(env["root"] / f"killed_{kind}")
  config = config_of(env, kind)
  kills = []
  # From step 6 on: the first kill then comes after the checkpoint of step 5 (saves are
  # synchronous), so the last run always has a checkpoint to resume from.
  for target in sorted(rng.sample(range(6, NUM_STEPS - 10, 3), 2)):
    proc = toolkit.start(toolkit.main_command(workdir, config))
    toolkit.wait_for_logged_step(proc, workdir, target)
    time.sleep(rng.uniform(0, 0.05))  # Land anywhere: mid-step, mid-save, mid-log.
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    kills.append((target, proc.returncode))
    assert proc.returncode in (-signal.SIGKILL, 0), err[-2000:]
  assert any(code == -signal.SIGKILL for _, code in kills), kills
  saved = toolkit.checkpoint_steps(workdir)
  # The resume in this process: what it reads is what the kills left (a process of its
  # own would only add its start-up).
  caplog.set_level(logging.INFO, logger="absl")
  caplog.clear()
  loop.run(config, workdir)
  toolkit.assert_resumed(caplog.text, saved[-1], workdir)
  toolkit.assert_trees_equal(final_state(workdir, reference), reference["state"])
  # No kill left a checkpoint that reads back wrong (atomic finalisation held).
  assert not os.path.exists(os.path.join(workdir, workdir_lib.CORRUPT_DIR))
  # Records replayed after a resume are not duplicated: the same lines as uninterrupted.
  assert toolkit.read_metrics(workdir) == reference["metrics"], f"kills {kills}"


# ------------------------------------------------------------------ preemption
# Both stop signals take the same way through the entry point (jaxgan.runtime.guard
# catches the two alike); each kind of run gets one of them, so both are tested without
# a third run.
STOP_SIGNAL = {"single": signal.SIGINT, "population": signal.SIGTERM}


def test_a_stop_signal_checkpoints_exits_75_and_resumes_exactly(env, reference, caplog):
  kind = reference["kind"]
  signum = STOP_SIGNAL[kind]
  workdir = str(env["root"] / f"preempted_{kind}")
  config = config_of(env, kind, checkpoint_every=50)
  proc = toolkit.start(toolkit.main_command(workdir, config))
  toolkit.wait_for_logged_step(proc, workdir, 9)
  proc.send_signal(signum)
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == EXIT_PREEMPTED, err[-3000:]
  stopped = int(err.split(f"stopped by {signum.name} after step ")[1].split(";")[0])
  assert 9 <= stopped < NUM_STEPS
  assert "Traceback" not in err
  # The step it stopped at is checkpointed although checkpoint_every is 50.
  assert toolkit.checkpoint_steps(workdir) == [stopped]
  caplog.set_level(logging.INFO, logger="absl")
  caplog.clear()
  loop.run(config, workdir)
  toolkit.assert_resumed(caplog.text, stopped, workdir)
  toolkit.assert_trees_equal(final_state(workdir, reference), reference["state"])
  assert toolkit.read_metrics(workdir) == reference["metrics"]


def test_a_second_sigint_acts_at_once():
  # Python's own SIGINT handler before the run, whatever the test process had (a test
  # worker may have been started with SIGINT ignored, and then no KeyboardInterrupt).
  outer = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    with guard.RunGuard() as run_guard:
      run_guard.catch_stop_signals()
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(0.01)  # Python runs the handler between bytecodes.
      assert run_guard.stop_requested and run_guard.received_signal == signal.SIGINT
      # The first signal put the previous handler back: the second one is not deferred.
      with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
  finally:
    signal.signal(signal.SIGINT, outer)


# ------------------------------------------------------------------ divergence
def test_diverged_single_run_exits_3_through_the_entry_point(env, tmp_path):
  workdir = str(tmp_path / "nan")
  config = config_of(env, "single", num_steps=30, lr_g=1e10, lr_d=1e10)
  result = toolkit.run_command(toolkit.main_command(workdir, config))
  assert result.returncode == EXIT_DIVERGED, result.stderr[-2000:]
  assert "jaxgan: training diverged at step 3:" in result.stderr
  assert "Traceback" not in result.stderr
  assert not os.listdir(os.path.join(workdir, "checkpoints"))  # Nothing bad saved.


def test_a_population_whose_members_all_diverge_exits_3(env, tmp_path):
  workdir = str(tmp_path / "all_nan")
  config = config_of(env, "population", num_steps=30, checkpoint_every=0,
                     sweep=("lr_d=1e9,1e10",))
  result = toolkit.run_command(toolkit.main_command(workdir, config))
  assert result.returncode == EXIT_DIVERGED, result.stderr[-2000:]
  assert "jaxgan: all 2 members diverged: member 0 at step" in result.stderr
  assert "Traceback" not in result.stderr
  rows = toolkit.read_results(workdir)
  assert [r["status"].split("@")[0] for r in rows] == ["diverged", "diverged"]


POISONED = {  # group -> a function poisoning that group of a state from step 5 on.
    "g/params": lambda s, p: s.replace(g=s.g.replace(
        params=jax.tree_util.tree_map(lambda x: x + p, s.g.params))),
    "g/batch_stats": lambda s, p: s.replace(g=s.g.replace(
        batch_stats=jax.tree_util.tree_map(lambda x: x * (1 + p), s.g.batch_stats))),
    "d/params": lambda s, p: s.replace(d=s.d.replace(
        params=jax.tree_util.tree_map(lambda x: x + p, s.d.params))),
    "d/opt_state": lambda s, p: s.replace(d=s.d.replace(
        opt_state=jax.tree_util.tree_map(
            lambda x: x + p if jnp.issubdtype(x.dtype, jnp.floating) else x,
            s.d.opt_state))),
}


def poison_from_step_5(monkeypatch, group: str, only_if=lambda state: True):
  """Makes the trainees' train step write NaN into `group` from step 5 on (for the
  members where only_if(state) holds)."""
  real_make_steps = trainees.make_steps

  def make_steps(config, gan, num_examples, **kwargs):
    steps = real_make_steps(config, gan, num_examples, **kwargs)

    def train_step(state, images, labels=None):
      state, metrics = steps.train_step(state, images, labels)
      poison = jnp.where((state.step >= 5) & only_if(state), jnp.nan, 0.0)
      return POISONED[group](state, poison), metrics

    return steps._replace(train_step=train_step)

  monkeypatch.setattr(trainees, "make_steps", make_steps)


@pytest.mark.parametrize("group", sorted(POISONED))
def test_nan_in_any_part_of_a_single_run_stops_it_unsaved(env, monkeypatch, tmp_path,
                                                          group):
  poison_from_step_5(monkeypatch, group)
  workdir = str(tmp_path / "nan")
  # Only G's BatchNorm statistics need the mlp; toy_mlp compiles in about half the time.
  config = config_of(env, "single", model="mlp" if group == "g/batch_stats" else "toy_mlp",
                     num_steps=12, log_every=3, checkpoint_every=4)
  with pytest.raises(Diverged) as info:
    loop.run(config, workdir)
  message = str(info.value)
  # Detected at the first check after the NaN (the log at step 6), naming the group.
  assert "diverged at step 6" in message
  assert f"non-finite {group}:" in message
  assert "last good checkpoint (step 4)" in message
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["4"]
  assert [r["step"] for r in toolkit.read_metrics(workdir)] == [3]


def poison_member_update(monkeypatch, who: str, part: str, threshold: float):
  """From its 5th update on, gives the guarded update of network `who` ('D' or 'G') NaN
  in `part` ('gradients' or 'batch_stats') in the members whose learning rate for that
  network exceeds `threshold`: what a blown-up network produces."""
  from jaxgan import steps as steps_lib
  from jaxgan.steps import gate as gate_lib
  real_propose = gate_lib.propose_update

  def propose_update(net, grads, tx, batch_stats, gate, name, loss):
    if isinstance(gate, steps_lib.Gate) and name == who:
      lr = net.opt_state.hyperparams["learning_rate"]
      poison = jnp.where((net.opt_state.count >= 4) & (lr > threshold), jnp.nan, 0.0)
      if part == "gradients":
        grads = jax.tree_util.tree_map(lambda g: g + poison, grads)
      else:
        batch_stats = jax.tree_util.tree_map(lambda x: x + poison, batch_stats)
    return real_propose(net, grads, tx, batch_stats, gate, name, loss)

  monkeypatch.setattr(gate_lib, "propose_update", propose_update)


def test_nan_in_one_member_is_masked_and_the_other_trains_on_unchanged(
    env, monkeypatch, tmp_path, who="D", part="gradients", named="D gradients"):
  # (Each of the guard's checks is tested on the step itself in test_steps.py.)
  # One program for the three runs (compiled once): the members whose rate for `who`
  # exceeds 2.5e-4 get NaN from their 5th update on, so member 1 at 3e-4 is poisoned,
  # while at 2.4e-4 (the clean run) or for 4 steps (clean_at_4) nobody is.
  poison_member_update(monkeypatch, who, part, threshold=2.5e-4)

  def population(rate_of_member_1: str, name: str, num_steps: int = 8):
    config = config_of(env, "population", num_steps=num_steps, checkpoint_every=0,
                       sweep=(f"lr_{who.lower()}=2e-4,{rate_of_member_1}",))
    return loop.run(config, str(tmp_path / name))

  clean = population("2.4e-4", "clean")
  clean_at = {4: toolkit.member(population("3e-4", "clean_at_4", num_steps=4), 1)}
  poisoned = population("3e-4", "poisoned")
  workdir = str(tmp_path / "poisoned")
  assert clean.health.diverged_at.tolist() == [-1, -1]
  assert poisoned.health.diverged_at.tolist() == [-1, 5]
  toolkit.assert_trees_equal(toolkit.member(poisoned, 0), toolkit.member(clean, 0))
  # Member 1 kept its last finite state: the update that failed (D's at step 5) and
  # every later one were discarded.
  kept = toolkit.member(poisoned, 1)
  toolkit.assert_trees_equal(kept.g, clean_at[4].g)
  toolkit.assert_trees_equal(kept.d, clean_at[4].d)
  records = toolkit.read_metrics(workdir)
  (diverged,) = [r for r in records if "diverged" in r]
  assert (diverged["member"], diverged["diverged_at"]) == (1, 5)
  assert diverged["diverged"] == named
  # Its divergence is recorded at the first check after it (the log at step 6); no
  # metrics of it are logged after that.
  assert diverged["step"] == 6
  assert not [r for r in records if r["member"] == 1 and r["step"] > 5 and r is not diverged]
  rows = toolkit.read_results(workdir)
  assert [(r["member"], r["status"]) for r in rows] == [("0", "ok"), ("1", "diverged@5")]


def test_a_member_at_lr_1e9_is_marked_diverged_ranked_last_and_leaves_the_others_exact(
    env, tmp_path, caplog):
  def population(lr_g_of_member_1, name, num_steps=20):
    # Ranked by D's output on fakes, which a G blown up by lr 1e9 would win.
    config = config_of(env, "population", num_steps=num_steps, checkpoint_every=0,
                       sweep=(f"lr_g=2e-4,{lr_g_of_member_1},5e-4",),
                       sweep_metric="d_fake")
    return loop.run(config, str(tmp_path / name)), str(tmp_path / name)

  sane, _ = population("3e-4", "sane")
  broken, workdir = population("1e9", "broken")
  # Resumed after its divergence (from step 10): the same state, the divergence recorded
  # once (the first run also logged its last step, 10).
  population("1e9", "resumed", num_steps=10)
  caplog.set_level(logging.INFO, logger="absl")
  caplog.clear()
  resumed, resumed_dir = population("1e9", "resumed")
  toolkit.assert_resumed(caplog.text, 10, resumed_dir)
  toolkit.assert_trees_equal(resumed, broken)
  assert [r for r in toolkit.read_metrics(resumed_dir) if r["step"] != 10] == (
      toolkit.read_metrics(workdir))
  assert len([r for r in toolkit.read_metrics(workdir) if "diverged" in r]) == 1
  for healthy in (0, 2):
    toolkit.assert_trees_equal(toolkit.member(broken, healthy), toolkit.member(sane, healthy))
  diverged = broken.health.diverged_at.tolist()
  assert diverged[0] == diverged[2] == -1 and diverged[1] > 0
  rows = toolkit.read_results(workdir)
  assert [(r["member"], r["status"]) for r in rows][2] == ("1", f"diverged@{diverged[1]}")
  assert [r["rank"] for r in rows] == ["1", "2", "3"]


# ------------------------------------------------------------------ workdir safety
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_second_run_on_a_locked_workdir_is_refused_naming_the_holder(env, tmp_path,
                                                                       kind):
  workdir = str(tmp_path / "locked")
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys; from jaxgan.runtime.workdir import WorkdirLock;"
       f" WorkdirLock({workdir!r}).acquire(); print('locked', flush=True); "
       "sys.stdin.read()"],
      cwd=toolkit.REPO, env=toolkit.subprocess_env(), stdin=subprocess.PIPE,
      stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    before = toolkit.tree_snapshot(workdir)
    with pytest.raises(WorkdirError, match=f"in use by another jaxgan run \\(pid "
                       f"{holder.pid} on host"):
      loop.run(config_of(env, kind, num_steps=2), workdir)
    assert toolkit.tree_snapshot(workdir) == before
  finally:
    holder.stdin.close()
    holder.wait(timeout=60)
  # The holder is gone (the kernel dropped its lock): the workdir is usable again.
  workdir_lib.WorkdirLock(workdir).acquire().release()


@pytest.mark.parametrize("kind, changed, named", [
    ("single", dict(latent_dim=5, loss="minimax"),
     ["--latent_dim=4 (saved) vs 5 (now)",
      "--loss='non_saturating' (saved) vs 'minimax' (now)"]),
    ("population", dict(sweep=("seed=0,2",)),
     ["--sweep=['seed=0,1'] (saved) vs ['seed=0,2'] (now)"]),
    ("population", dict(sweep=()), ["--sweep=['seed=0,1'] (saved) vs [] (now)"]),
])
def test_resume_with_a_flag_that_changes_the_experiment_is_refused_naming_it(
    env, tmp_path, kind, changed, named):
  workdir = str(tmp_path / "run")
  loop.run(config_of(env, kind, num_steps=2), workdir)
  before = toolkit.tree_snapshot(workdir)
  with pytest.raises(WorkdirError) as info:
    loop.run(config_of(env, kind, num_steps=4, **changed), workdir)
  for text in named:
    assert text in str(info.value)
  assert "--restart" in str(info.value)
  assert toolkit.tree_snapshot(workdir) == before


def test_resume_with_other_image_shapes_is_refused_naming_the_arrays(env, tmp_path):
  workdir = str(tmp_path / "run")
  loop.run(config_of(env, "single", num_steps=2), workdir)
  os.remove(os.path.join(workdir, "config.json"))  # Only the checkpoint can tell now.
  other_data = toolkit.tiny_idx_dir(str(tmp_path / "idx"), side=10)
  with pytest.raises(WorkdirError, match=r"d/params/.*saved float32\[64, .*expected "
                     r"float32\[100, "):
    loop.run(config_of(env, "single", num_steps=4, data_dir=other_data), workdir)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_restart_moves_the_old_run_aside_and_starts_over(env, tmp_path, kind):
  workdir = str(tmp_path / "run")
  loop.run(config_of(env, kind, num_steps=2), workdir)
  old = toolkit.tree_snapshot(workdir)
  # Another learning rate: the same step program, a warning without --restart.
  loop.run(config_of(env, kind, num_steps=2, lr_g=3e-4), workdir, restart=True)
  (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
  assert toolkit.tree_snapshot(aside) == old  # Moved whole, nothing deleted.
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["lr_g"] == 3e-4
  assert [r["step"] for r in toolkit.read_metrics(workdir)] == [
      r["step"] for r in toolkit.read_metrics(str(aside))]


def flip_a_byte_of_the_largest_array_file(step_dir: str) -> None:
  files = [os.path.join(r, n) for r, _, names in os.walk(step_dir) for n in names
           if os.sep + "d" + os.sep in os.path.join(r, n)]
  path = max(files, key=os.path.getsize)
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2] ^= 0xFF
  open(path, "wb").write(bytes(data))


def test_corrupted_latest_checkpoint_is_reported_and_the_previous_used(
    env, reference, tmp_path, caplog):
  kind = reference["kind"]
  workdir = str(tmp_path / "run")
  loop.run(config_of(env, kind, num_steps=8, checkpoint_every=4), workdir)
  flip_a_byte_of_the_largest_array_file(os.path.join(workdir, "checkpoints", "8"))
  caplog.set_level(logging.INFO, logger="absl")
  caplog.clear()
  loop.run(config_of(env, kind, num_steps=12, checkpoint_every=4), workdir)
  assert "checkpoint at step 8 is unreadable" in caplog.text
  toolkit.assert_resumed(caplog.text, 4, workdir)
  assert os.listdir(os.path.join(workdir, "corrupt_checkpoints")) == ["8"]
  toolkit.assert_trees_equal(final_state(workdir, reference, 12),
                             final_state(reference["workdir"], reference, 12))


def test_a_checkpoint_from_before_the_states_empty_parts_still_restores(tmp_path):
  # GANState gained `hparams` and `aux` ({} unless an objective term needs them): a
  # checkpoint written without them (here: a state class of the old fields, which orbax
  # saves alike) restores into today's state, fingerprint verified, the parts empty.
  import flax
  from jaxgan.runtime.compile import initial_state
  from jaxgan.state import make_gan

  class StateBeforeTerms(flax.struct.PyTreeNode):
    step: jax.Array
    rng: jax.Array
    g: object
    d: object
    g_ema: object

  state = initial_state(make_gan(toolkit.tiny_config(), (8, 8, 1)), jax.random.PRNGKey(0))
  old = StateBeforeTerms(step=state.step, rng=state.rng, g=state.g, d=state.d,
                         g_ema=state.g_ema)
  ckpts = checkpoint.Checkpoints(str(tmp_path / "checkpoints"))
  ckpts.save(old, 0)
  restored = ckpts.restore(state)
  ckpts.close()
  assert type(restored) is type(state) and restored.hparams == {} and restored.aux == {}
  toolkit.assert_trees_equal(restored, state)


def test_truncated_checkpoint_is_detected(tmp_path):
  from jaxgan.runtime.compile import initial_state
  from jaxgan.state import make_gan
  state = initial_state(make_gan(toolkit.tiny_config(), (8, 8, 1)), jax.random.PRNGKey(0))
  directory = str(tmp_path / "checkpoints")
  ckpts = checkpoint.Checkpoints(directory)
  ckpts.save(state, 0)
  files = [os.path.join(r, n) for r, _, names in os.walk(os.path.join(directory, "0"))
           for n in names]
  path = max(files, key=os.path.getsize)
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  with pytest.raises(checkpoint.CheckpointCorrupted, match="step 0 is unreadable"):
    ckpts.restore(state)
  ckpts.close()


def test_leftover_temporary_checkpoint_folder_is_ignored_and_removed(tmp_path):
  from jaxgan.runtime.compile import initial_state
  from jaxgan.state import make_gan
  directory = tmp_path / "checkpoints"
  ckpts = checkpoint.Checkpoints(str(directory))
  ckpts.save(initial_state(make_gan(toolkit.tiny_config(), (8, 8, 1)),
                           jax.random.PRNGKey(0)), 0)
  ckpts.close()
  # What a save killed before orbax's final rename leaves behind.
  (directory / "7.orbax-checkpoint-tmp-1234" / "default").mkdir(parents=True)
  ckpts = checkpoint.Checkpoints(str(directory), owner=True)
  assert ckpts.all_steps() == [0]
  assert sorted(os.listdir(directory)) == ["0"]
  ckpts.close()


def test_no_readable_checkpoint_is_a_clear_error_and_changes_nothing(env, tmp_path):
  workdir = str(tmp_path / "run")
  loop.run(config_of(env, "single", num_steps=4, checkpoint_every=2), workdir)
  for step in ("2", "4"):
    os.remove(os.path.join(workdir, "checkpoints", step, "_CHECKPOINT_METADATA"))
  before = toolkit.tree_snapshot(workdir)
  with pytest.raises(WorkdirError, match="no readable checkpoint .* step 4 is "
                     "unreadable.* step 2 is unreadable"):
    loop.run(config_of(env, "single", num_steps=6, checkpoint_every=2), workdir)
  assert toolkit.tree_snapshot(workdir) == before


def test_metrics_records_after_the_resume_step_are_dropped(tmp_path):
  from jaxgan.runtime import writers
  path = tmp_path / "metrics.jsonl"
  lines = [json.dumps({"step": s, "d_loss": 0.5}) + "\n" for s in (2, 4, 6, 8)]
  path.write_text("".join(lines) + '{"step": 10, "d_lo')  # Cut short by a kill.
  assert writers.drop_records_after(str(path), 4) == 3
  assert path.read_text() == "".join(lines[:2])


def test_check_finite_passes_a_finite_state():
  from jaxgan.runtime.compile import initial_state
  from jaxgan.state import make_gan
  state = initial_state(make_gan(toolkit.tiny_config(), (8, 8, 1)), jax.random.PRNGKey(0))
  guard.check_finite(1, state, {"d_loss": jnp.float32(0.7)})  # Does not raise.
