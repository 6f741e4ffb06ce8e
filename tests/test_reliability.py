"""Reliability: exact resume after SIGKILL, preemption, divergence, workdir safety.

Every run trains the real `mlp` GAN on a tiny IDX folder written by the test (64 random
8x8 images), so a step costs milliseconds. The subprocess tests (SIGKILL, SIGTERM, lock)
start `python -m jaxgan.main` a handful of times, sharing one persistent compilation
cache so only the first one compiles.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import checkpoint, guard, train, workdir as workdir_lib, writers
from jaxgan.config import Config
from jaxgan.errors import EXIT_PREEMPTED, Diverged, WorkdirError
from jaxgan.state import make_gan

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The subprocesses share a persistent compilation cache (this process gets one from
# conftest.py): each start would otherwise compile the train step again, which on a
# 2-core CPU costs far more than the few steps a test runs. Compiled code is the same
# either way (the cache key is the HLO), so results are unaffected.
JAX_CACHE = os.path.join(tempfile.gettempdir(), f"jaxgan-test-jax-cache-{os.getuid()}")
NUM_STEPS = 60
# Training fields of every run here; the schedules vary per test and never change the
# trajectory (the state is a pure function of config, seed and step).
TINY = dict(dataset="tiny", latent_dim=4, batch_size=8, num_steps=NUM_STEPS,
            log_every=3, sample_every=0, checkpoint_every=5, sample_grid=2)


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes a uint8 array as an (uncompressed) IDX file."""
  with open(path, "wb") as f:
    f.write(b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape))
    f.write(array.astype(np.uint8).tobytes())


def write_idx_folder(folder: str, num_train: int = 64, side: int = 8) -> str:
  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng(0)
  for stem, n in (("train", num_train), ("t10k", 16)):
    write_idx(os.path.join(folder, f"{stem}-images-idx3-ubyte"),
              rng.integers(0, 256, (n, side, side), dtype=np.uint8))
    write_idx(os.path.join(folder, f"{stem}-labels-idx1-ubyte"),
              rng.integers(0, 10, (n,), dtype=np.uint8))
  return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  """Shared data folder, compilation cache and subprocess environment."""
  root = tmp_path_factory.mktemp("reliability")
  data_dir = write_idx_folder(str(root / "idx"))
  proc_env = dict(os.environ, PYTHONPATH=REPO,
                  JAX_COMPILATION_CACHE_DIR=JAX_CACHE,
                  JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                  JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
                  JAX_PLATFORMS="cpu")
  return {"root": root, "data_dir": data_dir, "proc_env": proc_env}


def tiny_config(env, **overrides) -> Config:
  return Config(**{**TINY, "data_dir": env["data_dir"], **overrides})


def host_state(state):
  return jax.tree.map(np.asarray, jax.device_get(state))


def assert_bit_identical(a, b):
  leaves_a, tree_a = jax.tree.flatten(host_state(a))
  leaves_b, tree_b = jax.tree.flatten(host_state(b))
  assert tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b):
    assert x.dtype == y.dtype and np.array_equal(x, y), "states differ"


def read_metrics(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  for r in records:
    r.pop("steps_per_s")  # Wall-clock speed: the one field that is not deterministic.
  return records


def restore_final(workdir: str, config: Config):
  gan = make_gan(config, (8, 8, 1))
  ckpts = checkpoint.Checkpoints(os.path.join(workdir, "checkpoints"))
  try:
    return ckpts.restore(gan.init(jax.random.PRNGKey(config.seed)))
  finally:
    ckpts.close()


@pytest.fixture(scope="module")
def reference(env):
  """An uninterrupted run: final state, metrics, and a checkpoint every 12 steps."""
  workdir = str(env["root"] / "reference")
  config = tiny_config(env, checkpoint_every=12, max_checkpoints=100)
  state = host_state(train.run(config, workdir))
  return {"state": state, "metrics": read_metrics(workdir), "workdir": workdir,
          "config": config}


def reference_state_at(reference, step: int):
  ckpts = checkpoint.Checkpoints(os.path.join(reference["workdir"], "checkpoints"))
  try:
    gan = make_gan(reference["config"], (8, 8, 1))
    return ckpts.restore(gan.init(jax.random.PRNGKey(0)), step)
  finally:
    ckpts.close()


def main_command(workdir: str, config: Config) -> list[str]:
  flags = []
  for k, v in dataclasses.asdict(config).items():
    if isinstance(v, tuple):  # Repeated flags (--sweep): one per value, none if empty.
      flags += [f"--{k}={x}" for x in v]
    else:
      flags.append(f"--{k}={v}")
  return [sys.executable, "-m", "jaxgan.main", f"--workdir={workdir}",
          f"--compilation_cache_dir={JAX_CACHE}", *flags]


def start(env, workdir, config) -> subprocess.Popen:
  return subprocess.Popen(main_command(workdir, config), cwd=REPO, env=env["proc_env"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_logged_step(proc, workdir: str, step: int, timeout: float = 240) -> None:
  """Polls metrics.jsonl until a record with step >= `step` appears (or the run ends)."""
  path = os.path.join(workdir, "metrics.jsonl")
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and proc.poll() is None:
    try:
      with open(path) as f:
        steps = [json.loads(line)["step"] for line in f if line.endswith("\n")]
      if steps and max(steps) >= step:
        return
    except (OSError, ValueError):
      pass
    time.sleep(0.005)


# ------------------------------------------------------------------ crash-safe resume
def test_sigkill_at_random_points_then_resume_is_bit_identical(env, reference):
  seed = random.randrange(2**32)
  rng = random.Random(seed)
  workdir = str(env["root"] / "killed")
  config = tiny_config(env)
  kill_after = sorted(rng.sample(range(3, NUM_STEPS - 5, 3), 3))
  kills = []
  for target in kill_after:
    proc = start(env, workdir, config)
    wait_for_logged_step(proc, workdir, target)
    time.sleep(rng.uniform(0, 0.05))  # Land anywhere: mid-step, mid-save, mid-log.
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    kills.append((target, proc.returncode))
    assert proc.returncode in (-signal.SIGKILL, 0), err[-2000:]
  # At least one kill landed before the end (each run trains ~50 steps past its target).
  assert any(code == -signal.SIGKILL for _, code in kills), kills
  proc = start(env, workdir, config)
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, f"seed {seed}, kills {kills}: {err[-3000:]}"
  assert_bit_identical(restore_final(workdir, config), reference["state"])
  # No kill left a checkpoint that read back wrong (atomic finalisation held): the
  # resumes never had to fall back past one.
  assert not os.path.exists(os.path.join(workdir, workdir_lib.CORRUPT_DIR))
  # Records replayed after a resume are not duplicated: same lines as uninterrupted.
  assert read_metrics(workdir) == reference["metrics"], f"seed {seed}, kills {kills}"


def test_leftover_temporary_checkpoint_folder_is_ignored_and_removed(tmp_path):
  directory = tmp_path / "checkpoints"
  ckpts = checkpoint.Checkpoints(str(directory))
  ckpts.save(make_gan(Config(latent_dim=4), (8, 8, 1)).init(jax.random.PRNGKey(0)))
  ckpts.close()
  # What a save killed before orbax's final rename leaves behind.
  (directory / "7.orbax-checkpoint-tmp-1234" / "default").mkdir(parents=True)
  ckpts = checkpoint.Checkpoints(str(directory), owner=True)
  assert ckpts.all_steps() == [0]
  assert sorted(os.listdir(directory)) == ["0"]
  ckpts.close()


def test_metrics_records_after_the_resume_step_are_dropped(tmp_path):
  path = tmp_path / "metrics.jsonl"
  lines = [json.dumps({"step": s, "d_loss": 0.5}) + "\n" for s in (2, 4, 6, 8)]
  path.write_text("".join(lines) + '{"step": 10, "d_lo')  # Cut short by a kill.
  assert writers.drop_records_after(str(path), 4) == 3
  assert path.read_text() == "".join(lines[:2])


# ------------------------------------------------------------------ preemption
def test_sigterm_checkpoints_exits_75_and_resumes_exactly(env, reference):
  workdir = str(env["root"] / "preempted")
  config = tiny_config(env, checkpoint_every=50)
  proc = start(env, workdir, config)
  wait_for_logged_step(proc, workdir, 9)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == EXIT_PREEMPTED, err[-3000:]
  stopped = int(err.split("stopped by SIGTERM after step ")[1].split(";")[0])
  assert 9 <= stopped < NUM_STEPS
  assert "Traceback" not in err
  # The step it stopped at is checkpointed even though checkpoint_every is 50.
  assert sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))) == [
      stopped]
  final = train.run(config, workdir)
  assert_bit_identical(final, reference["state"])
  assert read_metrics(workdir) == reference["metrics"]


def test_sigint_requests_a_stop_and_a_second_one_acts_at_once():
  previous = signal.getsignal(signal.SIGINT)
  with guard.RunGuard() as run_guard:
    run_guard.catch_stop_signals()
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.01)  # Python runs the handler between bytecodes.
    assert run_guard.stop_requested and run_guard.received_signal == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is previous  # Handlers are back.
  assert signal.getsignal(signal.SIGINT) is previous


# ------------------------------------------------------------------ divergence
def test_injected_nan_stops_without_saving_the_bad_state(env, monkeypatch, tmp_path):
  real_make_steps = train.make_steps

  def make_steps_with_nan_from_step_5(config, gan, num_examples):
    steps = real_make_steps(config, gan, num_examples)

    def train_step(state, images, labels=None):
      state, metrics = steps.train_step(state, images, labels)
      poison = jnp.where(state.step >= 5, jnp.nan, 0.0)
      g = state.g.replace(params=jax.tree.map(lambda p: p + poison, state.g.params))
      return state.replace(g=g), {**metrics, "g_loss": metrics["g_loss"] + poison}

    return steps._replace(train_step=train_step)

  monkeypatch.setattr(train, "make_steps", make_steps_with_nan_from_step_5)
  workdir = str(tmp_path / "nan")
  config = tiny_config(env, num_steps=12, log_every=3, checkpoint_every=4)
  with pytest.raises(Diverged) as info:
    train.run(config, workdir)
  message = str(info.value)
  # Detected at the first log step after the NaN (step 6), naming the quantities.
  assert "diverged at step 6" in message
  assert "g_loss = nan" in message
  assert "non-finite g/params: 16 arrays, e.g. g/params/BatchNorm_0/bias" in message
  assert "last good checkpoint (step 4)" in message
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["4"]
  assert [r["step"] for r in read_metrics(workdir)] == [3]


def test_check_finite_passes_a_finite_state():
  state = make_gan(Config(latent_dim=4), (8, 8, 1)).init(jax.random.PRNGKey(0))
  guard.check_finite(1, state, {"d_loss": jnp.float32(0.7)})  # Does not raise.


# ------------------------------------------------------------------ workdir safety
def tree_snapshot(folder) -> dict:
  """{relative path: (size, mtime_ns)} of every file under `folder` but the lock file
  (which a run that takes the lock rewrites with its pid)."""
  snap = {}
  for root, _, files in os.walk(folder):
    for name in files:
      if name == workdir_lib.LOCK_NAME:
        continue
      path = os.path.join(root, name)
      st = os.stat(path)
      snap[os.path.relpath(path, folder)] = (st.st_size, st.st_mtime_ns)
  return snap


def test_second_run_on_a_locked_workdir_is_refused_naming_the_holder(env, tmp_path):
  workdir = str(tmp_path / "locked")
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys; from jaxgan.workdir import WorkdirLock; "
       f"WorkdirLock({workdir!r}).acquire(); print('locked', flush=True); "
       "sys.stdin.read()"],
      cwd=REPO, env=env["proc_env"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
      text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    before = tree_snapshot(workdir)
    with pytest.raises(WorkdirError, match=f"in use by another jaxgan run \\(pid "
                       f"{holder.pid} on host"):
      train.run(tiny_config(env, num_steps=2), workdir)
    assert tree_snapshot(workdir) == before
  finally:
    holder.stdin.close()
    holder.wait(timeout=60)
  # The holder is gone (the kernel dropped its lock): the workdir is usable again.
  workdir_lib.WorkdirLock(workdir).acquire().release()


def test_resume_with_a_different_model_flag_is_refused_naming_it(env, tmp_path):
  workdir = str(tmp_path / "run")
  train.run(tiny_config(env, num_steps=2), workdir)
  before = tree_snapshot(workdir)
  with pytest.raises(WorkdirError) as info:
    train.run(tiny_config(env, num_steps=4, latent_dim=5, loss="minimax"), workdir)
  assert "--latent_dim=4 (saved) vs 5 (now)" in str(info.value)
  assert "--loss='non_saturating' (saved) vs 'minimax' (now)" in str(info.value)
  assert "--restart" in str(info.value)
  assert tree_snapshot(workdir) == before


def test_resume_with_other_image_shapes_is_refused_naming_the_arrays(env, tmp_path):
  workdir = str(tmp_path / "run")
  train.run(tiny_config(env, num_steps=2), workdir)
  os.remove(os.path.join(workdir, "config.json"))  # Only the checkpoint can tell now.
  other_data = write_idx_folder(str(tmp_path / "idx10"), side=10)
  with pytest.raises(WorkdirError, match=r"d/params/.*saved float32\[64, .*expected "
                     r"float32\[100, "):
    train.run(tiny_config(env, num_steps=4, data_dir=other_data), workdir)


def test_restart_moves_the_old_run_aside_and_starts_over(env, tmp_path):
  workdir = str(tmp_path / "run")
  train.run(tiny_config(env, num_steps=2), workdir)
  old = tree_snapshot(workdir)
  train.run(tiny_config(env, num_steps=2, latent_dim=5), workdir, restart=True)
  (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
  assert tree_snapshot(aside) == old  # Moved whole, nothing deleted.
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["latent_dim"] == 5


def flip_a_byte_of_the_largest_array_file(step_dir: str) -> None:
  files = [os.path.join(r, n) for r, _, names in os.walk(step_dir) for n in names
           if os.sep + "d" + os.sep in os.path.join(r, n)]
  path = max(files, key=os.path.getsize)
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2] ^= 0xFF
  open(path, "wb").write(bytes(data))


def test_corrupted_latest_checkpoint_is_reported_and_the_previous_used(
    env, reference, tmp_path, caplog):
  workdir = str(tmp_path / "run")
  train.run(tiny_config(env, num_steps=8, checkpoint_every=4), workdir)
  flip_a_byte_of_the_largest_array_file(os.path.join(workdir, "checkpoints", "8"))
  final = train.run(tiny_config(env, num_steps=12, checkpoint_every=4), workdir)
  assert "checkpoint at step 8 is unreadable" in caplog.text
  assert os.listdir(os.path.join(workdir, "corrupt_checkpoints")) == ["8"]
  assert_bit_identical(final, reference_state_at(reference, 12))


def test_truncated_checkpoint_is_detected(tmp_path):
  directory = str(tmp_path / "checkpoints")
  state = make_gan(Config(latent_dim=4), (8, 8, 1)).init(jax.random.PRNGKey(0))
  ckpts = checkpoint.Checkpoints(directory)
  ckpts.save(state)
  step_dir = os.path.join(directory, "0")
  files = [os.path.join(r, n) for r, _, names in os.walk(step_dir) for n in names]
  path = max(files, key=os.path.getsize)
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  with pytest.raises(checkpoint.CheckpointCorrupted, match="step 0 is unreadable"):
    ckpts.restore(state)
  ckpts.close()


def test_no_readable_checkpoint_is_a_clear_error_and_changes_nothing(env, tmp_path):
  workdir = str(tmp_path / "run")
  train.run(tiny_config(env, num_steps=4, checkpoint_every=2), workdir)
  for step in ("2", "4"):
    os.remove(os.path.join(workdir, "checkpoints", step, "_CHECKPOINT_METADATA"))
  before = tree_snapshot(workdir)
  with pytest.raises(WorkdirError, match="no readable checkpoint .* step 4 is "
                     "unreadable.* step 2 is unreadable"):
    train.run(tiny_config(env, num_steps=6, checkpoint_every=2), workdir)
  assert tree_snapshot(workdir) == before
