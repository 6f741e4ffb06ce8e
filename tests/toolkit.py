"""The tests' shared toolkit: tiny data, tiny configs, tree equality, workdir readers and
the entry point, in a subprocess or in this process. One copy of each, for every test
module."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gzip
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

import jax
import numpy as np

from jaxgan.config import Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
# The test processes (both xdist workers and every subprocess) share one persistent
# compilation cache: a program compiled by one is a cache hit for the others, whatever
# the order the tests run in; each start would otherwise compile the train step again,
# which on a 2-core CPU costs far more than the few steps a test runs. Compiled code is
# the same either way (the cache key is the HLO and the compile options).
JAX_CACHE = os.path.join(tempfile.gettempdir(), f"jaxgan-test-jax-cache-{os.getuid()}")


def use_test_compilation_cache() -> None:
  """This process compiles into JAX_CACHE and caches every program, however small."""
  jax.config.update("jax_compilation_cache_dir", JAX_CACHE)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# --------------------------------------------------------------------------- data
def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
  """An array as an IDX file (magic 0x0000TTNN, big-endian dims, the raw bytes)."""
  array = np.ascontiguousarray(array)
  header = b"\0\0" + bytes([code, array.ndim]) + struct.pack(f">{array.ndim}I",
                                                              *array.shape)
  return header + array.tobytes()


def write_idx_dir(folder, images: np.ndarray, labels: np.ndarray,
                  test_images: np.ndarray | None = None,
                  test_labels: np.ndarray | None = None, gz: bool = False) -> str:
  """Writes the four MNIST-format IDX files (uint8 images [N, H, W], labels [N])."""
  os.makedirs(folder, exist_ok=True)
  test_images = images if test_images is None else test_images
  test_labels = labels if test_labels is None else test_labels
  for stem, imgs, labs in (("train", images, labels), ("t10k", test_images, test_labels)):
    for kind, ndim, arr in (("images", 3, imgs), ("labels", 1, labs)):
      raw = idx_bytes(np.asarray(arr, np.uint8))
      name = os.path.join(folder, f"{stem}-{kind}-idx{ndim}-ubyte")
      if gz:
        with gzip.open(name + ".gz", "wb") as f:
          f.write(raw)
      else:
        with open(name, "wb") as f:
          f.write(raw)
  return str(folder)


def tiny_idx_dir(folder, num_train: int = 64, num_test: int = 16, side: int = 8,
                 gz: bool = False) -> str:
  """Random side x side uint8 images with labels 0..9 (seed 0), as IDX files."""
  rng = np.random.default_rng(0)
  return write_idx_dir(folder, rng.integers(0, 256, (num_train, side, side)),
                       rng.integers(0, 10, (num_train,)),
                       rng.integers(0, 256, (num_test, side, side)),
                       rng.integers(0, 10, (num_test,)), gz=gz)


def tiny_config(data_dir: str = "", **overrides: Any) -> Config:
  """The real mlp on 8x8 images with small batches: milliseconds per step. A sweep draws
  no sweep_plot.png (a second of matplotlib per run) unless asked: sweep_plot=True."""
  base = dict(data_dir=data_dir, model="mlp", latent_dim=4, batch_size=8,
              num_steps=3, log_every=1, sample_every=0, checkpoint_every=0,
              sample_grid=2, sweep_plot=False)
  base.update(overrides)
  return Config(**base)


def shrink(gan):
  """The same model classes with narrow layers: the code paths of the real models at a
  fraction of the compile and run time."""
  from jaxgan import models
  g, d = gan.generator, gan.discriminator
  if isinstance(g, models.MLPGenerator):
    g = g.clone(hidden=(16, 32))
  elif isinstance(g, models.PaperGenerator):
    g = g.clone(hidden=(32, 32))
  if isinstance(d, models.MLPDiscriminator):
    d = d.clone(hidden=(32, 16))
  elif isinstance(d, models.PaperDiscriminator):
    d = d.clone(units=16)
  return gan._replace(generator=g, discriminator=d)


# --------------------------------------------------------------------------- trees
def host_tree(tree: Any) -> Any:
  return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def member(state: Any, index: int) -> Any:
  """Member `index` of a population state as a single-run state, on the host (slicing
  the device arrays would compile one program per leaf shape)."""
  from jaxgan.sweep.population import member_state
  return member_state(host_tree(state), index)


def assert_trees_equal(a: Any, b: Any) -> None:
  """Same structure and bit-identical leaves (dtype included)."""
  leaves_a, tree_a = jax.tree_util.tree_flatten(host_tree(a))
  leaves_b, tree_b = jax.tree_util.tree_flatten(host_tree(b))
  assert tree_a == tree_b, f"structures differ:\n{tree_a}\n{tree_b}"
  for i, (x, y) in enumerate(zip(leaves_a, leaves_b)):
    assert x.dtype == y.dtype, f"leaf {i}: {x.dtype} vs {y.dtype}"
    assert np.array_equal(x, y, equal_nan=True), f"leaf {i} differs"


def assert_trees_close(a: Any, b: Any, rtol: float) -> None:
  """Same structure; every leaf within `rtol` of the other *relative to that leaf's own
  scale* (max |x|), so leaves of ~1e-8 (Adam's second moments) are held to the same
  relative precision as parameters of ~1."""
  leaves_a, tree_a = jax.tree_util.tree_flatten(host_tree(a))
  leaves_b, tree_b = jax.tree_util.tree_flatten(host_tree(b))
  assert tree_a == tree_b
  for i, (x, y) in enumerate(zip(leaves_a, leaves_b)):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    scale = max(np.max(np.abs(x), initial=0.0), np.max(np.abs(y), initial=0.0))
    assert np.max(np.abs(x - y), initial=0.0) <= rtol * scale, (
        f"leaf {i}: max diff {np.max(np.abs(x - y))} vs scale {scale}")


# --------------------------------------------------------------------------- workdirs
def read_metrics(workdir: str, drop_speed: bool = True) -> list[dict]:
  """metrics.jsonl's records; without steps_per_s (wall-clock speed, the one field that
  is not deterministic)."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  if drop_speed:
    for r in records:
      r.pop("steps_per_s", None)
  return records


def read_results(workdir: str) -> list[dict]:
  """The rows of a sweep's results CSV, best rank first."""
  from jaxgan.sweep import results
  with open(os.path.join(workdir, results.RESULTS_CSV)) as f:
    return list(csv.DictReader(f))


def tree_snapshot(folder) -> dict:
  """{relative path: (size, mtime_ns)} of every file under `folder` but the lock file
  (which a run that takes the lock rewrites with its pid)."""
  from jaxgan.runtime.workdir import LOCK_NAME
  snap = {}
  for root, _, files in os.walk(folder):
    for name in files:
      if name == LOCK_NAME:
        continue
      path = os.path.join(root, name)
      st = os.stat(path)
      snap[os.path.relpath(path, folder)] = (st.st_size, st.st_mtime_ns)
  return snap


def checkpoint_steps(workdir: str) -> list[int]:
  """The steps of the finished checkpoints in workdir/checkpoints (orbax renames a step's
  folder into place when it is complete: a save cut short leaves only a tmp folder)."""
  folder = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


# The loop's log lines that say where a run started and which steps it trained
# (jaxgan.runtime.loop: "Resumed from DIR at step N.", "Training ... for M steps from
# step N.", and one "step S/M ..." line per logged step).
_RESUMED = re.compile(r"Resumed from (\S+) at step (\d+)\.")
_STARTED = re.compile(r" for (\d+) steps from step (\d+)\.")
_LOGGED_STEP = re.compile(r"\bstep (\d+)/\d+ ")


def logged_steps(log: str) -> list[int]:
  """The steps a run logged a progress line for, in order."""
  return [int(s) for s in _LOGGED_STEP.findall(log)]


def assert_resumed(log: str, step: int, workdir: str, to_the_end: bool = True) -> None:
  """`log` (one run's stderr, or the log records of one in-process run) shows that the
  run resumed from its checkpoint of `step` in `workdir` and trained only the steps after
  it (to_the_end: up to its last, which is always logged). Files cannot show this: a run
  that ignored its checkpoint keeps the saved steps as they are and rewrites the metrics
  records it replays, so it ends with the same files."""
  shown = log[-3000:]
  checkpoints = os.path.abspath(os.path.join(workdir, "checkpoints"))
  assert [(os.path.abspath(d), int(s)) for d, s in _RESUMED.findall(log)] == [
      (checkpoints, step)], f"expected one resume from step {step}:\n{shown}"
  [(num_steps, start)] = [(int(m), int(n)) for m, n in _STARTED.findall(log)]
  assert start == step, shown
  logged = logged_steps(log)
  assert all(s > step for s in logged), (
      f"resumed at step {step} but logged steps {logged}:\n{shown}")
  if to_the_end and step < num_steps:
    assert logged and logged[-1] == num_steps, f"logged steps {logged}:\n{shown}"
  elif not to_the_end:
    assert logged, f"no step logged after step {step}:\n{shown}"


@contextlib.contextmanager
def on_failure_say(note: str):
  """`note` heads the message of any failure inside (an assertion, a missing file or
  key): a randomized test's seed (so the failure can be replayed), or the command whose
  outputs are checked."""
  try:
    yield
  except Exception as e:
    raise AssertionError(f"{note}\n{type(e).__name__}: {e}") from e


def restore_checkpoint(workdir: str, like: Any, step: int | None = None) -> Any:
  from jaxgan.runtime.checkpoint import Checkpoints
  ckpts = Checkpoints(os.path.join(workdir, "checkpoints"))
  try:
    return ckpts.restore(like, step)
  finally:
    ckpts.close()


# --------------------------------------------------------------------------- entry points
def subprocess_env(**extra: str) -> dict[str, str]:
  return dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu",
              JAX_COMPILATION_CACHE_DIR=JAX_CACHE,
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
              JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", **extra)


def config_flags(config: Config) -> list[str]:
  """--name=value for every field of `config` (a repeated flag per --sweep value), but
  the run length left at 0 (unset): on a command line the later of --num_steps and
  --num_epochs decides, and a 0 typed there is refused rather than read as unset."""
  out = []
  for k, v in dataclasses.asdict(config).items():
    if k in ("num_steps", "num_epochs") and not v:
      continue
    if isinstance(v, tuple):
      out += [f"--{k}={x}" for x in v]
    else:
      out.append(f"--{k}={v}")
  return out


def main_command(workdir: str, config: Config, *extra: str) -> list[str]:
  return [sys.executable, "-m", "jaxgan.main", f"--workdir={workdir}",
          f"--compilation_cache_dir={JAX_CACHE}", *config_flags(config), *extra]


def start(command: list[str], cwd: str = REPO) -> subprocess.Popen:
  return subprocess.Popen(command, cwd=cwd, env=subprocess_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def run_command(command: list[str], timeout: float = 300,
                cwd: str = REPO) -> subprocess.CompletedProcess:
  return subprocess.run(command, cwd=cwd, env=subprocess_env(), capture_output=True,
                        text=True, timeout=timeout)


def wait_for_logged_step(proc: subprocess.Popen, workdir: str, step: int,
                         timeout: float = 240) -> None:
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


def run_main_in_process(argv: list[str], capsys) -> tuple[int, str]:
  """Runs `python -m jaxgan.main ARGV` in this process (its flag parser and main);
  returns (exit code, stderr). Unless ARGV names one, --compilation_cache_dir is the
  tests' cache (the default would point this process at ~/.cache/jaxgan/xla), and the
  cache settings main changes are put back afterwards."""
  from absl.testing import flagsaver

  from jaxgan.cli import common, main
  common.define_once(main.define_flags)
  if not any(a.startswith("--compilation_cache_dir=") for a in argv):
    argv = [*argv, f"--compilation_cache_dir={JAX_CACHE}"]
  with flagsaver.flagsaver():
    code = 0
    try:
      rest = common.parse_flags(["jaxgan", *argv])
      main.main(rest)
    except SystemExit as e:
      code = e.code
    finally:
      use_test_compilation_cache()
  return code, capsys.readouterr().err


# --------------------------------------------------------------------------- evaluation
# A tiny labelled image dataset with known classes, and its classifier trained once per
# test process (training and its compilation are the slow part).
CLASSES_SHAPE = (8, 8)


def make_class_images(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Three classes anyone can tell apart: bright top half, bright bottom half, dark;
  plus noise. Returns uint8 [num, 8, 8] and int labels [num]."""
  rng = np.random.default_rng(seed)
  labels = np.arange(num) % 3
  images = rng.uniform(0, 60, size=(num,) + CLASSES_SHAPE)
  images[labels == 0, :4] += 180
  images[labels == 1, 4:] += 180
  return images.clip(0, 255).astype(np.uint8), labels.astype(np.int32)


def write_classes_folder(folder: str, num_train: int = 120, num_test: int = 60) -> str:
  """The four IDX files of the three-class dataset (`make_class_images`) in `folder`."""
  train_images, train_labels = make_class_images(num_train, 0)
  test_images, test_labels = make_class_images(num_test, 1)
  return write_idx_dir(folder, train_images, train_labels, test_images, test_labels)


_CACHE: dict = {}


def trained_tiny_classifier():
  """(data_dir, classifier) for the tiny dataset, trained once per test process and
  shared by the test modules (training and its compilation are the slow part)."""
  if "tiny" not in _CACHE:
    import tempfile

    from jaxgan import data
    from jaxgan.eval import classifier as clf
    data_dir = write_classes_folder(os.path.join(tempfile.mkdtemp(prefix="jaxgan_eval_"),
                                                 "classes"))
    train = data.load_dataset("", data_dir, "train")
    test = data.load_dataset("", data_dir, "test")
    model = clf.train_classifier(train, test, epochs=4, batch_size=32,
                                 learning_rate=3e-3, log=lambda *_: None)
    _CACHE["tiny"] = (data_dir, model)
  return _CACHE["tiny"]


def cached_tiny_classifier(root) -> tuple[str, object, str]:
  """(data_dir, classifier, cache): the tiny classifier saved in the classifier cache
  folder root/classifiers, where training runs on data_dir look it up (by the data's
  name, 'classes': --classifier_dir)."""
  from jaxgan.eval import classifier as clf
  data_dir, model = trained_tiny_classifier()
  cache = os.path.join(str(root), "classifiers")
  clf.save_classifier(model, clf.cache_path(model.dataset, cache))
  return data_dir, model, cache


def random_inception_state_dict(seed: int = 0) -> dict:
  """torch tensors under pytorch-fid's Inception keys and shapes (jaxgan.eval.inception's
  list, which pytorch-fid's strict load_state_dict checks in test_eval_inception): He-scaled
  convolutions, every BatchNorm's scale, offset, running mean and running variance
  drawn (not 0/1), and the step counters torch writes. Needs torch (a test requirement)."""
  import torch

  from jaxgan.eval import inception
  rng = np.random.default_rng(seed)
  out = {}
  for key, shape in inception.expected_shapes().items():
    if key.endswith("conv.weight"):
      value = rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape)
    elif key.endswith("bn.weight"):  # Keeps pool3 of order 1 (softmax not saturated).
      value = rng.uniform(0.5, 1.5, shape)
    elif key.endswith("running_var"):
      value = rng.uniform(0.5, 2.0, shape)
    elif key.endswith(("bn.bias", "running_mean")):
      value = rng.normal(0, 0.2, shape)
    else:  # fc
      value = rng.normal(0, 1 / np.sqrt(inception.FEATURE_DIM), shape)
    out[key] = torch.tensor(value, dtype=torch.float32)
    if key.endswith("bn.weight"):
      out[key[:-len("weight")] + "num_batches_tracked"] = torch.tensor(7)
  return out


def write_random_inception_weights(path: str) -> str:
  """random_inception_state_dict saved by torch in the legacy format, as pytorch-fid's
  weights file is (a name without a hash: it loads with a warning)."""
  import torch
  torch.save(random_inception_state_dict(), path, _use_new_zipfile_serialization=False)
  return path
