"""The training loop of a single run end to end (jaxgan.runtime.loop.run): what a run
writes, exact resume, bad input refused before the workdir is touched, the
--eval_every hook and the evaluation of a workdir's checkpoints, TensorBoard event
files, and --steps_per_call.

Every run trains the real `mlp` GAN (latent 4, batch 8) on tiny IDX folders of 8x8
images, so a step costs milliseconds; runs that several tests read are module fixtures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import inspect
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import xlogy

from jaxgan import data
from jaxgan.config import Config
from jaxgan.errors import ConfigError, DataError, EvalError
from jaxgan.eval import evaluator as evaluator_lib, features as features_lib
from jaxgan.eval import members as eval_members
from jaxgan.runtime import compile as compile_lib
from jaxgan.runtime import evaluation, loop, schedule, tb_events, trainees, writers

import toolkit


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """The 3-class dataset of 120 8x8 images (toolkit.make_class_images): 15 batches of 8
  per epoch. The evaluation tests train on the same data (the compiled programs are
  shared)."""
  return toolkit.write_classes_folder(str(tmp_path_factory.mktemp("loop") / "classes"))


def run_config(data_dir: str, **overrides) -> Config:
  base = dict(num_steps=20, log_every=5, sample_every=10, checkpoint_every=10)
  return toolkit.tiny_config(data_dir, **{**base, **overrides})


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
  """20 uninterrupted steps (they cross the epoch boundary at step 15): logs every 5,
  samples and checkpoints every 10."""
  workdir = str(tmp_path_factory.mktemp("finished") / "run")
  state = toolkit.host_tree(loop.run(run_config(data_dir), workdir))
  return workdir, state


# --------------------------------------------------------------------------- outputs
def test_run_writes_metrics_samples_config_and_checkpoints(finished):
  workdir, state = finished
  records = toolkit.read_metrics(workdir, drop_speed=False)
  assert [r["step"] for r in records] == [5, 10, 15, 20]
  assert {"d_loss", "g_loss", "d_real", "d_fake", "steps_per_s"} <= set(records[0])
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == ["step_10.png",
                                                                  "step_20.png"]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["10", "20"]
  with open(os.path.join(workdir, "config.json")) as f:
    saved = json.load(f)
  assert saved["batch_size"] == 8 and saved["num_steps"] == 20
  assert saved["resolved_num_steps"] == 20 and saved["data_name"] == "classes"
  assert glob.glob(os.path.join(workdir, "events.out.tfevents.*"))
  assert int(state.step) == 20


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(finished, data_dir,
                                                              tmp_path):
  full_dir, full = finished
  half_dir = str(tmp_path / "half")
  half = loop.run(run_config(data_dir, num_steps=12), half_dir)
  assert int(half.step) == 12
  resumed = loop.run(run_config(data_dir), half_dir)
  assert int(resumed.step) == 20
  toolkit.assert_trees_equal(resumed, full)
  # The 12-step run also logged its last step; the rest are the uninterrupted records.
  half_records = toolkit.read_metrics(half_dir)
  assert [r["step"] for r in half_records] == [5, 10, 12, 15, 20]
  assert [r for r in half_records if r["step"] != 12] == toolkit.read_metrics(full_dir)


# --------------------------------------------------------------------------- trainees
def test_the_loop_uses_only_what_the_trainee_interface_declares():
  # One loop for both kinds of run: it reaches them through trainees.Trainee alone.
  source = inspect.getsource(loop)
  used = set(re.findall(r"\btrainee\.(\w+)", source))
  declared = set(dir(trainees.Trainee)) | set(trainees.Trainee.__annotations__)
  assert {"describe", "log_line", "finish", "on_diverged", "health"} <= used
  assert used <= declared, sorted(used - declared)
  for name in ("is_population", "SingleRun", "PopulationRun"):
    assert name not in source, name
  for kind in (trainees.SingleRun, trainees.PopulationRun):
    assert not kind.__abstractmethods__, kind  # Each implements the whole interface.


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("overrides, error, message", [
    ({"model": "resnet9000"}, ConfigError, "--model='resnet9000' is invalid"),
    ({"loss": "l7"}, ConfigError, "--loss='l7' is invalid"),
    ({"update_order": "sideways"}, ConfigError, "--update_order='sideways'"),
    ({"batch_size": 0}, ConfigError, "--batch_size=0 is invalid"),
    ({"latent_dim": -3}, ConfigError, "--latent_dim=-3 is invalid"),
    ({"lr_d": 0.0}, ConfigError, "--lr_d=0.0 is invalid"),
    ({"lr_g": -1e-3}, ConfigError, "--lr_g=-0.001 is invalid"),
    ({"num_steps": 0}, ConfigError, "--num_steps=0 is invalid"),
    ({"num_d_steps": 0}, ConfigError, "--num_d_steps=0 is invalid"),
    ({"batch_size": 1000}, ConfigError, "--batch_size=1000 needs more examples than the dataset"),
    ({"data_dir": "/nonexistent/folder"}, DataError,
     "--data_dir='/nonexistent/folder' is not a folder"),
])
def test_bad_input_is_a_clear_error_and_leaves_the_workdir_alone(
    data_dir, tmp_path, overrides, error, message):
  workdir = tmp_path / "w"
  workdir.mkdir()
  (workdir / "metrics.jsonl").write_text('{"step": 1}\n')
  config = dataclasses.replace(run_config(data_dir), **overrides)
  with pytest.raises(error) as info:
    loop.run(config, str(workdir))
  assert message in str(info.value)
  assert os.listdir(workdir) == ["metrics.jsonl"]
  assert (workdir / "metrics.jsonl").read_text() == '{"step": 1}\n'


def test_malformed_data_dir_is_a_clear_error(tmp_path):
  folder = toolkit.write_idx_dir(tmp_path / "d", np.zeros((4, 2, 2), np.uint8),
                                 np.zeros(4, np.uint8))
  with open(os.path.join(folder, "train-images-idx3-ubyte"), "r+b") as f:
    f.truncate(20)  # Header (16 bytes) and 4 of the 16 pixels.
  with pytest.raises(DataError, match=r"need 16 bytes of data but the file holds 4 "
                     r"\(truncated or corrupted\)"):
    loop.run(toolkit.tiny_config(folder, batch_size=2), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


@pytest.mark.xdist_group("tensorflow")  # Imports TensorFlow: see test_data.py.
def test_offline_tfds_download_failure_points_to_data_dir(tmp_path, monkeypatch):
  pytest.importorskip("tensorflow_datasets")
  import socket
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))  # Nothing prepared here.
  # Offline whatever the machine: every name lookup and connection of this process
  # fails (proxies included), so with internet the download fails all the same.
  blocked = []

  def offline(*args, **kwargs):
    blocked.append(args[:1])
    raise socket.gaierror(socket.EAI_NONAME, "network blocked by the test")

  monkeypatch.setattr(socket, "getaddrinfo", offline)
  monkeypatch.setattr(socket.socket, "connect", offline)
  with pytest.raises(DataError) as info:
    loop.run(Config(dataset="mnist", num_steps=1), str(tmp_path / "w"))
  assert blocked  # The download was tried, and failed here.
  assert "could not download or prepare tfds dataset 'mnist'" in str(info.value)
  assert "--data_dir=" in str(info.value)
  assert not (tmp_path / "w").exists()


# --------------------------------------------------------------------------- evaluation
ISSUE_KEYS = {"fid", "kid", "kid_std", "inception_score", "inception_score_std",
              "parzen_ll", "parzen_se", "parzen_sigma", "modes_covered", "mode_kl",
              "num_samples", "num_real", "classifier_accuracy"}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
  """The 3-class 8x8 dataset (toolkit.make_class_images), its classifier in a cache
  folder, and a 2-step run with --eval_every=2 (one evaluation, at step 2) that
  checkpoints at steps 1 and 2."""
  root = tmp_path_factory.mktemp("eval")
  classes_dir, model, cache = toolkit.cached_tiny_classifier(root)
  config = toolkit.tiny_config(classes_dir, num_steps=2, checkpoint_every=1,
                               eval_every=2, eval_num_samples=20, classifier_dir=cache)
  workdir = str(root / "run")
  real_evaluate = evaluator_lib.Evaluator.evaluate_images

  def recording(self, images, seed=0):  # The samples the run's evaluation scored.
    SCORED[workdir] = np.asarray(images, np.float64)
    return real_evaluate(self, images, seed)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(evaluator_lib.Evaluator, "evaluate_images", recording)
    loop.run(config, workdir)
  return config, workdir, model


SCORED: dict[str, np.ndarray] = {}


def test_training_logs_evaluation_to_metrics_jsonl(evaluated):
  _, workdir, _ = evaluated
  evals = [r for r in toolkit.read_metrics(workdir) if "eval/fid" in r]
  assert [r["step"] for r in evals] == [2]
  assert {"eval/" + k for k in ISSUE_KEYS} <= set(evals[0])
  assert evals[0]["eval/num_samples"] == 20


def test_training_writes_eval_json_with_issue_keys(evaluated):
  _, workdir, model = evaluated
  with open(evaluation.results_path(workdir, 2)) as f:
    results = json.load(f)
  assert ISSUE_KEYS <= set(results)
  assert results["num_real"] == 60 and results["step"] == 2
  assert results["num_samples"] == 20 and results["dataset"] == "classes"
  assert results["classifier_accuracy"] == pytest.approx(model.accuracy)
  # The protocol is stated on the classifier too, as on Inception features.
  assert results["protocol"]["reference"] == {"split": "classes test", "num_samples": 60}
  assert results["protocol"]["test_accuracy"] == pytest.approx(model.accuracy)
  assert "classifier" in results["protocol"]["network"]
  # Known answers from the 20 samples it scored: the classifier's argmax counts, and the
  # Inception Score by a NumPy transcription of Salimans et al.'s rule (10 consecutive
  # splits, each against its own marginal).
  probs = np.asarray(features_lib.extract(model, SCORED[workdir])[1], np.float64)
  histogram = np.bincount(probs.argmax(axis=1), minlength=3)
  assert results["mode_histogram"] == histogram.tolist()
  assert results["modes_covered"] == int(np.sum(histogram > 0))
  splits = probs.reshape(10, 2, 3)
  kl = np.sum(xlogy(splits, splits) - xlogy(splits, splits.mean(axis=1, keepdims=True)),
              axis=2)
  # A 2-step G's samples look alike (IS ~1.0001): compare what exceeds 1, where 5 splits
  # instead of 10 differ by ~60 %.
  assert results["inception_score"] - 1.0 == pytest.approx(
      np.exp(kl.mean(axis=1)).mean() - 1.0, rel=0.02)
  # Parzen's bandwidth is chosen from its grid of 10 values in [0.1, 1].
  assert np.min(np.abs(np.logspace(-1, 0, 10) - results["parzen_sigma"])) < 1e-6


def test_evaluating_a_checkpoint_reproduces_the_training_evaluation(evaluated):
  config, workdir, _ = evaluated
  with open(evaluation.results_path(workdir, 2)) as f:
    during = json.load(f)
  after = evaluation.evaluate_workdir(config, workdir, step=2)
  for key in ("fid", "kid", "inception_score", "parzen_ll", "mode_kl"):
    assert after[key] == pytest.approx(during[key], rel=1e-4, abs=1e-6), key
  assert after["mode_histogram"] == during["mode_histogram"]


def test_evaluating_a_sweeps_checkpoint_reproduces_each_members_training_evaluation(
    evaluated, tmp_path):
  # The config of test_sweep's evaluated population: its programs are compiled already.
  config = dataclasses.replace(evaluated[0], checkpoint_every=0, sweep=("seed=0,1",))
  workdir = str(tmp_path / "sweep")
  with contextlib.redirect_stdout(io.StringIO()):  # The printed ranking.
    loop.run(config, workdir)
  members = evaluation.evaluate_population_workdir(config, workdir, step=None)
  assert [(r["member"], r["hparams"], r["step"]) for r in members] == [
      (0, {"seed": 0}, 2), (1, {"seed": 1}, 2)]
  for r in members:
    with open(eval_members.member_results_path(workdir, r["member"], 2)) as f:
      during = json.load(f)
    for key in ("fid", "kid", "inception_score", "parzen_ll", "mode_kl"):
      assert r[key] == pytest.approx(during[key], rel=1e-4, abs=1e-6), key
  with pytest.raises(EvalError, match="holds a sweep"):
    evaluation.evaluate_workdir(config, workdir, step=2)


def test_step_zero_is_the_untrained_generator(evaluated):
  config, workdir, _ = evaluated
  results = evaluation.evaluate_workdir(config, workdir, step=0)
  assert results["step"] == 0 and os.path.isfile(evaluation.results_path(workdir, 0))
  with open(evaluation.results_path(workdir, 2)) as f:
    assert results["fid"] != json.load(f)["fid"]  # Not the trained checkpoint.


def test_missing_checkpoint_step_lists_the_available_ones(evaluated):
  config, workdir, _ = evaluated
  with pytest.raises(EvalError, match=r"no checkpoint at step 7; its checkpoints are at "
                     r"steps \[1, 2\]"):
    evaluation.evaluate_workdir(config, workdir, step=7)


def test_real_images_score_better_than_noise(evaluated):
  config, _, _ = evaluated
  ev = evaluation.make_evaluator(config)
  trainset = data.load_dataset(config.dataset, config.data_dir, "train")
  real = ev.evaluate_images(trainset.images[:60])
  noise = ev.evaluate_images(np.random.default_rng(0).uniform(size=(60, 8, 8, 1)))
  assert real["fid"] < noise["fid"] and real["kid"] < noise["kid"]
  assert real["parzen_ll"] > noise["parzen_ll"]
  assert real["modes_covered"] == 3


def test_training_without_classifier_fails_before_touching_workdir(evaluated, tmp_path):
  config, _, _ = evaluated
  config = dataclasses.replace(config, classifier_dir=str(tmp_path / "empty"))
  # The data is named after its folder, 'classes': the command names that dataset.
  with pytest.raises(EvalError, match="python -m jaxgan.classifier --dataset=classes"):
    loop.run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_scalars_keep_numbers_only():
  got = evaluator_lib.scalars({"fid": 1.5, "parzen_ll": None, "mode_histogram": [1],
                               "classifier": "c", "modes_covered": 3})
  assert got == {"eval/fid": 1.5, "eval/modes_covered": 3.0}


def test_a_workdirs_config_json_loads_back_as_its_config(evaluated):
  # config.json also holds data_name and resolved_num_steps (not Config fields) and
  # stores --sweep's tuple as a JSON list; the evaluate command reads it back.
  config, workdir, _ = evaluated
  assert evaluation.load_run_config(workdir) == config


# --------------------------------------------------------------------------- TensorBoard
def read_events(workdir):
  tf = pytest.importorskip("tensorflow")
  events = []
  for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
    # TFRecordDataset checks both CRCs of every record.
    for raw in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event()
      event.ParseFromString(raw.numpy())
      events.append(event)
  return events


def test_crc32c_known_value():
  assert tb_events.crc32c(b"123456789") == 0xE3069283  # The CRC-32C check value.
  assert tb_events.crc32c(b"") == 0


@pytest.mark.xdist_group("tensorflow")  # Imports TensorFlow: see test_data.py.
def test_scalars_read_back_by_tensorflow(tmp_path):
  w = writers.MetricsWriter(str(tmp_path), resume_step=0)
  w.write(1, {"d_loss": 0.5, "g_loss": 1.25})
  w.write(2, {"d_loss": -3.0}, tags={"member": 3})
  w.close()
  events = read_events(str(tmp_path))
  assert events[0].file_version == "brain.Event:2"
  assert events[1].session_log.status == events[1].session_log.START
  assert events[1].step == 1
  scalars = [(e.step, v.tag, v.simple_value) for e in events for v in e.summary.value]
  assert scalars == [(1, "d_loss", 0.5), (1, "g_loss", 1.25),
                     (2, "member_3/d_loss", -3.0)]
  assert all(e.wall_time > 1e9 for e in events)


@pytest.mark.xdist_group("tensorflow")  # Imports TensorFlow: see test_data.py.
def test_large_and_negative_steps_round_trip(tmp_path):
  w = tb_events.EventFileWriter(str(tmp_path))
  w.add_scalars(2**40 + 7, {"x": 1.0})
  w.add_scalars(-5, {"y": 2.0})
  w.close()
  steps = [e.step for e in read_events(str(tmp_path)) if e.summary.value]
  assert steps == [2**40 + 7, -5]


def test_two_writers_in_one_second_use_two_files(tmp_path):
  a = tb_events.EventFileWriter(str(tmp_path))
  b = tb_events.EventFileWriter(str(tmp_path))
  assert a.path != b.path
  a.close(), b.close()


def test_writers_import_neither_tensorboardx_nor_torch():
  code = ("import sys, jaxgan.runtime.writers; print(sorted(m for m in "
          "('torch', 'tensorboardX', 'tensorflow') if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, cwd=toolkit.REPO, env=toolkit.subprocess_env())
  assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------ steps_per_call
def test_loop_lands_on_every_event_with_steps_per_call():
  # 10-step calls, but events every 4 and 6 steps: each event fires at its exact step.
  assert schedule.next_event(0, (4, 6), 25) == 4
  assert schedule.next_event(4, (4, 6), 25) == 6
  assert schedule.next_event(24, (4, 6), 25) == 25
  assert schedule.next_event(3, (0, 0), 25) == 25


def test_steps_per_call_run_equals_the_one_step_run(data_dir, tmp_path, monkeypatch):
  # 10 steps in calls of 3, logs at 4, 8, 10 and checkpoints at 5, 10: 0 -(3)-> 3 -> 4
  # -> 5 -(3)-> 8 -> 9 -> 10. The same state, records and checkpoints as 10 single steps.
  base = dict(num_steps=10, log_every=4, sample_every=0, checkpoint_every=5)
  one_dir, spc_dir = str(tmp_path / "one"), str(tmp_path / "spc")
  one = toolkit.host_tree(loop.run(toolkit.tiny_config(data_dir, **base), one_dir))

  dispatches = []
  advance = compile_lib.StepFunctions.advance

  def recording_advance(self, state, images, labels, step, until):
    state, metrics, new_step = advance(self, state, images, labels, step, until)
    # The device's own step counter: the dispatch really ran that many steps.
    dispatches.append((step, int(state.step)))
    assert int(state.step) == new_step
    return state, metrics, new_step

  monkeypatch.setattr(compile_lib.StepFunctions, "advance", recording_advance)
  spc = loop.run(toolkit.tiny_config(data_dir, steps_per_call=3, **base), spc_dir)
  assert dispatches == [(0, 3), (3, 4), (4, 5), (5, 8), (8, 9), (9, 10)]
  toolkit.assert_trees_equal(spc, one)
  assert toolkit.read_metrics(spc_dir) == toolkit.read_metrics(one_dir)
  assert [r["step"] for r in toolkit.read_metrics(one_dir)] == [4, 8, 10]
  ckpts = [sorted(int(s) for s in os.listdir(os.path.join(w, "checkpoints")))
           for w in (one_dir, spc_dir)]
  assert ckpts == [[5, 10], [5, 10]]
  toolkit.assert_trees_equal(toolkit.restore_checkpoint(spc_dir, spc, 5),
                             toolkit.restore_checkpoint(one_dir, spc, 5))
