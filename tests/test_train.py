"""The training loop end to end: outputs, exact resume, and bad input."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxgan import train
from jaxgan.config import Config
from jaxgan.errors import ConfigError, DataError

from conftest import write_idx_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(folder, **overrides):
  base = Config(dataset="tiny", data_dir=folder, batch_size=64, num_steps=6,
                log_every=2, sample_every=3, checkpoint_every=3, sample_grid=2)
  return dataclasses.replace(base, **overrides)


def leaves(state):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]


def test_run_writes_metrics_samples_config_and_checkpoints(tiny_idx_dir, tmp_path):
  workdir = str(tmp_path / "w")
  train.run(tiny_config(tiny_idx_dir), workdir)
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in records] == [2, 4, 6]
  assert {"d_loss", "g_loss", "d_real", "d_fake", "steps_per_s"} <= set(records[0])
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == ["step_3.png",
                                                                  "step_6.png"]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]
  assert json.load(open(os.path.join(workdir, "config.json")))["batch_size"] == 64
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tiny_idx_dir, tmp_path):
  # 256 examples / batch 64 = 4 batches per epoch: the 6 steps cross an epoch boundary.
  full = train.run(tiny_config(tiny_idx_dir), str(tmp_path / "full"))
  half_dir = str(tmp_path / "half")
  half = train.run(tiny_config(tiny_idx_dir, num_steps=3), half_dir)
  assert int(half.step) == 3
  resumed = train.run(tiny_config(tiny_idx_dir), half_dir)
  assert int(resumed.step) == 6
  for a, b in zip(leaves(full), leaves(resumed)):
    np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("overrides, error, message", [
    ({"model": "resnet9000"}, ConfigError, "--model='resnet9000'"),
    ({"loss": "l7"}, ConfigError, "--loss='l7'"),
    ({"update_order": "sideways"}, ConfigError, "--update_order"),
    ({"batch_size": 0}, ConfigError, "--batch_size=0"),
    ({"latent_dim": -3}, ConfigError, "--latent_dim=-3"),
    ({"lr_d": 0.0}, ConfigError, "--lr_d=0.0"),
    ({"lr_g": -1e-3}, ConfigError, "--lr_g"),
    ({"num_steps": 0}, ConfigError, "--num_steps"),
    ({"num_d_steps": 0}, ConfigError, "--num_d_steps=0"),
    ({"batch_size": 1000}, ConfigError, "larger than the dataset"),
    ({"data_dir": "/nonexistent/folder"}, DataError, "--data_dir='/nonexistent/folder'"),
])
def test_bad_input_is_a_clear_error_and_leaves_the_workdir_alone(
    tiny_idx_dir, tmp_path, overrides, error, message):
  workdir = tmp_path / "w"
  workdir.mkdir()
  (workdir / "metrics.jsonl").write_text('{"step": 1}\n')
  with pytest.raises(error, match=message.replace("(", r"\(").replace("[", r"\[")):
    train.run(tiny_config(tiny_idx_dir, **overrides), str(workdir))
  assert os.listdir(workdir) == ["metrics.jsonl"]
  assert (workdir / "metrics.jsonl").read_text() == '{"step": 1}\n'


def test_malformed_data_dir_is_a_clear_error(tmp_path):
  folder = write_idx_dir(tmp_path / "d", np.zeros((4, 2, 2), np.uint8),
                         np.zeros(4, np.uint8), gz=False)
  with open(os.path.join(folder, "train-images-idx3-ubyte"), "r+b") as f:
    f.truncate(20)
  with pytest.raises(DataError, match="truncated"):
    train.run(tiny_config(folder, batch_size=2), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def run_main(*args, env=None):
  return subprocess.run([sys.executable, "-m", "jaxgan.main", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, **(env or {})})


def test_main_reports_bad_flags_without_a_traceback(tiny_idx_dir, tmp_path):
  result = run_main(f"--data_dir={tiny_idx_dir}", "--workdir", str(tmp_path / "w"),
                    "--model=nope", "--num_steps=1")
  assert result.returncode == 2
  assert "jaxgan: error: --model='nope' is invalid: expected one of" in result.stderr
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "w").exists()


def test_offline_tfds_download_failure_points_to_data_dir(tmp_path):
  result = run_main("--dataset=mnist", "--num_steps=1", "--workdir", str(tmp_path / "w"),
                    env={"TFDS_DATA_DIR": str(tmp_path / "tfds")})
  assert result.returncode == 2, result.stderr[-2000:]
  assert "could not download or prepare tfds dataset 'mnist'" in result.stderr
  assert "--data_dir=" in result.stderr
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "w").exists()
