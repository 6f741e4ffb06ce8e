"""`python -m jaxgan.evaluate --samples=PATH`: anyone's samples scored with every metric
(jaxgan/cli/evaluate.py), and the reading rules of jaxgan/eval/samples.py.

The command runs in subprocesses (a process holds one program's flags); the reading
rules are tested on the library functions, which the command calls."""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import pytest
from PIL import Image
from scipy.special import xlogy

from jaxgan.errors import EXIT_USAGE, EvalError
from jaxgan.eval import features, samples

import toolkit

SHAPE = toolkit.CLASSES_SHAPE + (1,)  # The tiny classifier's images: 8x8x1.
METRICS = ("fid", "kid", "kid_std", "inception_score", "inception_score_std",
           "parzen_ll", "parzen_se", "parzen_sigma", "modes_covered", "mode_kl",
           "precision", "recall", "density", "coverage")


def pytorch_gan_samples(n: int = 40) -> np.ndarray:
  """What PyTorch-GAN's gan.py holds before save_image: tanh output, NCHW, float32 in
  [-1, 1] (here: images of the tiny dataset's classes, so the metrics mean something)."""
  images, _ = toolkit.make_class_images(n, seed=7)
  return (images[:, None].astype(np.float32) / 127.5 - 1.0).astype(np.float32)


def evaluate(*args: str) -> tuple[int, str, str]:
  result = toolkit.run_command([sys.executable, "-m", "jaxgan.evaluate", *args],
                               timeout=240)
  return result.returncode, result.stdout, result.stderr


# --------------------------------------------------------------------------- command
def test_scores_a_pytorch_gan_sample_file_with_every_metric(tmp_path):
  data_dir, model, cache = toolkit.cached_tiny_classifier(tmp_path)
  path = tmp_path / "gen_imgs.npy"
  np.save(path, pytorch_gan_samples())
  code, out, err = evaluate(f"--samples={path}", "--samples_range=-1,1",
                            f"--data_dir={data_dir}", f"--classifier_dir={cache}",
                            f"--out={tmp_path / 'results'}")
  assert code == 0, err[-3000:]
  with open(tmp_path / "results" / "gen_imgs_eval.json") as f:
    results = json.load(f)
  for key in METRICS:
    assert isinstance(results[key], (int, float)) and math.isfinite(results[key]), key
  assert results["num_samples"] == 40 and results["num_real"] == 60
  assert results["samples"] == {"format": "npy", "layout": "NCHW", "dtype": "float32",
                                "range": [-1.0, 1.0]}
  assert results["dataset"] == "classes" and results["prdc_k"] == 5
  # Real-looking images of all three classes: the classifier sees every mode.
  assert results["modes_covered"] == 3 and results["coverage"] > 0.5
  # Known answers. The samples are images of the classes i % 3, which the classifier
  # tells apart: the mode histogram is their label counts. The IS is that of the
  # classifier's probabilities on these images, by a NumPy transcription of Salimans et
  # al.'s rule: 10 consecutive splits, each against its own marginal p(y).
  images, labels = toolkit.make_class_images(40, seed=7)
  probs = np.asarray(features.extract(model, images[..., None])[1], np.float64)
  np.testing.assert_array_equal(probs.argmax(axis=1), labels)
  assert results["mode_histogram"] == [14, 13, 13] == np.bincount(labels).tolist()
  splits = probs.reshape(10, 4, 3)
  kl = np.sum(xlogy(splits, splits) - xlogy(splits, splits.mean(axis=1, keepdims=True)),
              axis=2)
  scores = np.exp(kl.mean(axis=1))
  assert results["inception_score"] == pytest.approx(scores.mean(), rel=1e-4)
  assert results["inception_score_std"] == pytest.approx(scores.std(), rel=1e-3, abs=1e-5)
  [printed] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
  assert printed["precision"] == results["precision"]


def test_a_folder_of_pngs_reads_as_the_same_array(tmp_path):
  # The command scores what load_samples returns: equal images, equal results.
  images, _ = toolkit.make_class_images(12, seed=8)
  folder = tmp_path / "pngs"
  folder.mkdir()
  for i, image in enumerate(images):
    Image.fromarray(image).save(folder / f"{i:03d}.png")
  (folder / "notes.txt").write_text("ignored")
  np.save(tmp_path / "same.npy", images)  # uint8 [N, H, W]
  from_pngs, info = samples.load_samples(str(folder), SHAPE)
  from_array, array_info = samples.load_samples(str(tmp_path / "same.npy"), SHAPE)
  np.testing.assert_array_equal(from_pngs, from_array)
  assert info["layout"] == "png" and array_info["layout"] == "NHW"
  assert from_pngs.dtype == np.uint8 and from_pngs.shape == (12, 8, 8, 1)


@pytest.mark.parametrize("make_args, message", [
    (lambda p, d, c: [f"--samples={p}/missing.npy", f"--data_dir={d}"],
     "--samples='{p}/missing.npy': no such file or folder"),
    (lambda p, d, c: [f"--samples={p}/x.npy"],
     "--samples needs the dataset the samples imitate"),
    (lambda p, d, c: [f"--samples={p}/x.npy", f"--data_dir={d}", "--samples_range=1"],
     "--samples_range='1' is not a range"),
    (lambda p, d, c: [f"--samples={p}/x.npy", f"--data_dir={d}", f"--classifier_dir={c}"],
     "is float32 with values in [-1, 0.8745]: give their range with --samples_range=LO,HI"),
    (lambda p, d, c: [f"--samples={p}/x.npy", "--dataset=no_such_data",
                      f"--classifier_dir={c}"],
     "no classifier at"),
    (lambda p, d, c: [f"--samples={p}/x.npy", "--samples_range=-1,1",
                      "--eval_num_samples=9", f"--data_dir={d}", f"--classifier_dir={c}"],
     "9 samples are too few; expected at least 10"),
])
def test_bad_input_exits_2_with_one_message(make_args, message, tmp_path):
  data_dir, _, cache = toolkit.cached_tiny_classifier(tmp_path)
  np.save(tmp_path / "x.npy", pytorch_gan_samples(20))
  code, _, err = evaluate(*make_args(tmp_path, data_dir, cache))
  assert code == EXIT_USAGE, err[-3000:]
  assert message.format(p=tmp_path) in err
  assert err.count("jaxgan: error:") == 1 and "Traceback" not in err


# --------------------------------------------------------------------------- rules
def test_layouts_are_read_by_the_shape_rule():
  nhwc = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
  for array, layout in ((nhwc, "NHWC"), (nhwc[..., 0], "NHW"),
                        (np.transpose(nhwc, (0, 3, 1, 2)), "NCHW")):
    got, read = samples.to_nhwc(array, SHAPE)
    assert read == layout
    np.testing.assert_array_equal(got, nhwc)
  rgb = np.zeros((2, 3, 8, 8), np.uint8)
  assert samples.to_nhwc(rgb, (8, 8, 3))[0].shape == (2, 8, 8, 3)


@pytest.mark.parametrize("shape", [(5, 8, 8, 3), (5, 28, 28, 1), (5, 8, 8, 1, 1),
                                   (64,), (5, 2, 8, 8)])
def test_a_wrong_shape_names_the_expected_ones(shape):
  with pytest.raises(EvalError, match=r"expected \[N, 8, 8, 1\] or \[N, 8, 8\] or "
                                      r"\[N, 1, 8, 8\]"):
    samples.to_nhwc(np.zeros(shape, np.float32), SHAPE, "s.npy")


def test_float_samples_are_mapped_from_their_range():
  x = np.array([-1.0, -1.005, 0.0, 1.0, 1.004], np.float32).reshape(5, 1, 1, 1)
  unit, info = samples.to_unit(x, (-1.0, 1.0))
  np.testing.assert_allclose(unit.ravel(), [0.0, 0.0, 0.5, 1.0, 1.0])
  assert unit.dtype == np.float32 and info == {"dtype": "float32", "range": [-1.0, 1.0]}
  u8 = np.full((2, 1, 1, 1), 200, np.uint8)
  assert samples.to_unit(u8, None)[0] is u8


@pytest.mark.parametrize("array, value_range, message", [
    (np.array([0.0, 2.0], np.float32), (-1.0, 1.0),
     r"values in \[0, 2\], outside --samples_range=-1,1"),
    (np.array([0.0, np.nan, np.inf], np.float32), (-1.0, 1.0),
     "has 2 non-finite value"),
    (np.array([0.0, 0.5], np.float64), None, "give their range with --samples_range"),
    (np.array([0, 255], np.int64), None, "has dtype int64; expected uint8"),
    (np.array([0, 255], np.uint8), (-1.0, 1.0), "is uint8"),
])
def test_bad_values_are_refused(array, value_range, message):
  with pytest.raises(EvalError, match=message):
    samples.to_unit(array, value_range, "s.npy")


@pytest.mark.parametrize("text", ["1", "a,b", "1,1", "2,1", "0,inf", "1,2,3"])
def test_bad_ranges_are_refused(text):
  with pytest.raises(EvalError, match="--samples_range"):
    samples.parse_range(text)


def test_npz_with_several_arrays_needs_a_key(tmp_path):
  path = str(tmp_path / "s.npz")
  images = np.zeros((3, 8, 8), np.uint8)
  np.savez(path, images=images, labels=np.arange(3))
  with pytest.raises(EvalError, match=r"holds 2 arrays \['images', 'labels'\]: name "
                                      "the samples with --samples_key"):
    samples.load_samples(path, SHAPE)
  with pytest.raises(EvalError, match="--samples_key='nope' is not in"):
    samples.load_samples(path, SHAPE, key="nope")
  got, info = samples.load_samples(path, SHAPE, key="images")
  assert got.shape == (3, 8, 8, 1) and info["format"] == "npz"


def test_unreadable_files_and_png_folders_are_refused(tmp_path):
  (tmp_path / "bad.npy").write_bytes(b"not numpy")
  with pytest.raises(EvalError, match="not a readable .npy"):
    samples.load_samples(str(tmp_path / "bad.npy"), SHAPE)
  with pytest.raises(EvalError, match="expected a .npy or .npz file"):
    samples.load_samples(_touch(tmp_path / "s.txt"), SHAPE)
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(EvalError, match="folder without .png files"):
    samples.load_samples(str(empty), SHAPE)
  grid = tmp_path / "grid"
  grid.mkdir()
  Image.fromarray(np.zeros((34, 34), np.uint8)).save(grid / "grid.png")
  with pytest.raises(EvalError, match="is 34x34 pixels; the feature network takes 8x8"):
    samples.load_samples(str(grid), SHAPE)


def _touch(path) -> str:
  path.write_text("")
  return str(path)


def test_too_few_samples_are_refused():
  from jaxgan.eval import evaluator
  with pytest.raises(EvalError, match="too few to evaluate: expected at least 10"):
    # The check comes before any use of the Evaluator's fields.
    evaluator.Evaluator.evaluate_images(None, np.zeros((9, 8, 8, 1), np.uint8))
