"""Evaluation of runs: the --eval_every hook, `jaxgan.evaluate`, result files and keys."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxgan import data, train
from jaxgan.config import Config
from jaxgan.errors import EvalError
from jaxgan.eval import evaluator as evaluator_lib
from jaxgan.eval import runs

import eval_fixtures

ISSUE_KEYS = {"fid", "kid", "kid_std", "inception_score", "inception_score_std",
              "parzen_ll", "parzen_se", "parzen_sigma", "modes_covered", "mode_kl",
              "num_samples", "num_real", "classifier_accuracy"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """A tiny IDX dataset, its classifier in a cache folder, and a 2-step run with
  --eval_every=2 (so it evaluates once, at step 2)."""
  root = tmp_path_factory.mktemp("eval")
  data_dir, model, cache = eval_fixtures.cached_tiny_classifier(root)
  config = Config(dataset="tiny", data_dir=data_dir, latent_dim=4, batch_size=8,
                  num_steps=2, log_every=1, sample_every=0, checkpoint_every=1,
                  eval_every=2, eval_num_samples=20, classifier_dir=cache)
  workdir = str(root / "run")
  train.run(config, workdir)
  return config, workdir, model


def test_training_logs_evaluation_to_metrics_jsonl(setup):
  _, workdir, _ = setup
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  evals = [r for r in records if "eval/fid" in r]
  assert [r["step"] for r in evals] == [2]
  assert {"eval/" + k for k in ISSUE_KEYS} <= set(evals[0])
  assert evals[0]["eval/num_samples"] == 20


def test_training_writes_eval_json_with_issue_keys(setup):
  _, workdir, model = setup
  with open(runs.results_path(workdir, 2)) as f:
    results = json.load(f)
  assert ISSUE_KEYS <= set(results)
  assert results["num_real"] == 60 and results["step"] == 2
  assert results["classifier_accuracy"] == pytest.approx(model.accuracy)
  assert 1.0 <= results["inception_score"] <= 3.0
  assert 1 <= results["modes_covered"] <= 3 and sum(results["mode_histogram"]) == 20
  assert np.min(np.abs(np.logspace(-1, 0, 10) - results["parzen_sigma"])) < 1e-6


def test_evaluating_a_checkpoint_reproduces_the_training_evaluation(setup):
  config, workdir, _ = setup
  during = json.load(open(runs.results_path(workdir, 2)))
  after = runs.evaluate_workdir(config, workdir, step=2)
  for key in ("fid", "kid", "inception_score", "parzen_ll", "mode_kl"):
    assert after[key] == pytest.approx(during[key], rel=1e-4, abs=1e-6)


def test_step_zero_is_the_untrained_generator(setup):
  config, workdir, _ = setup
  results = runs.evaluate_workdir(config, workdir, step=0)
  assert results["step"] == 0 and os.path.isfile(runs.results_path(workdir, 0))


def test_missing_checkpoint_step_lists_the_available_ones(setup):
  config, workdir, _ = setup
  with pytest.raises(EvalError, match=r"no checkpoint at step 7.*\[1, 2\]"):
    runs.evaluate_workdir(config, workdir, step=7)


def test_real_images_score_better_than_noise(setup):
  config, _, _ = setup
  ev = runs.make_evaluator(config)
  trainset = data.load_dataset("tiny", config.data_dir, "train")
  real = ev.evaluate_images(trainset.images[:60])
  noise = ev.evaluate_images(np.random.default_rng(0).uniform(size=(60, 8, 8, 1)))
  assert real["fid"] < noise["fid"] and real["kid"] < noise["kid"]
  assert real["parzen_ll"] > noise["parzen_ll"]
  assert real["modes_covered"] == 3


def test_training_without_classifier_fails_before_touching_workdir(setup, tmp_path):
  config, _, _ = setup
  import dataclasses
  config = dataclasses.replace(config, classifier_dir=str(tmp_path / "empty"))
  with pytest.raises(EvalError, match="python -m jaxgan.classifier --dataset=tiny"):
    train.run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_evaluate_command_without_workdir_exits_2():
  proc = subprocess.run([sys.executable, "-m", "jaxgan.evaluate"], capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 2 and "--workdir is required" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_scalars_keep_numbers_only():
  got = evaluator_lib.scalars({"fid": 1.5, "parzen_ll": None, "mode_histogram": [1],
                               "classifier": "c", "modes_covered": 3})
  assert got == {"eval/fid": 1.5, "eval/modes_covered": 3.0}


def test_a_workdirs_config_json_loads_back_as_its_config(setup):
  # config.json stores --sweep's tuple as a JSON list; the evaluate command reads it back.
  config, workdir, _ = setup
  assert runs.load_run_config(workdir) == config
