"""The evaluation classifier (jaxgan/eval/classifier.py, features.py): trains, stores
accuracy, round-trips, refuses mismatches. The tiny three-class dataset of the toolkit,
named 'classes' after its folder; its classifier is trained once per test process."""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import data
from jaxgan.errors import EvalError
from jaxgan.eval import classifier as clf
from jaxgan.eval import features

import toolkit


@pytest.fixture(scope="module")
def trained():
  data_dir, model = toolkit.trained_tiny_classifier()
  return model, data.load_dataset("", data_dir, "test")


def test_classifier_learns_separable_classes_and_records_accuracy(trained):
  model, test = trained
  assert model.accuracy == pytest.approx(clf.accuracy(model, test))
  assert model.accuracy >= 0.9
  assert model.dataset == model.meta["dataset"] == test.name == "classes"
  assert model.num_classes == model.meta["num_classes"] == 3
  assert model.image_shape == test.image_shape == (8, 8, 1)


def test_classifier_outputs_features_and_probabilities(trained):
  model, test = trained
  feats, probs = features.extract(model, test.images, batch_size=16)
  assert feats.shape == (60, 128) and probs.shape == (60, 3)
  np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, rtol=1e-5)
  assert float(jnp.min(feats)) >= 0.0  # ReLU features.


def test_extract_accepts_uint8_or_unit_floats_alike(trained):
  model, test = trained
  from_uint8 = features.extract(model, test.images)[0]
  from_float = features.extract(model, test.images.astype(np.float32) / 255.0)[0]
  np.testing.assert_allclose(from_uint8, from_float, rtol=1e-5, atol=1e-5)


def test_saved_classifier_is_found_by_dataset_name_with_same_outputs(trained, tmp_path):
  model, test = trained
  path = clf.save_classifier(model, clf.cache_path("classes", str(tmp_path)))
  assert path == os.path.join(str(tmp_path), "classes")
  with open(os.path.join(path, clf.META_FILE)) as f:
    assert json.load(f)["test_accuracy"] == pytest.approx(model.accuracy)
  loaded = clf.find_classifier("classes", str(tmp_path))
  assert loaded.accuracy == pytest.approx(model.accuracy)
  np.testing.assert_array_equal(features.extract(loaded, test.images)[1],
                                features.extract(model, test.images)[1])


def test_classifier_of_another_dataset_is_refused(trained, tmp_path):
  model, _ = trained
  clf.save_classifier(model, os.path.join(str(tmp_path), "mnist"))  # Wrong folder.
  with pytest.raises(EvalError, match="trained on 'classes', not on 'mnist'"):
    clf.find_classifier("mnist", str(tmp_path))
  with pytest.raises(EvalError, match="trained on 'classes'"):
    features.check_compatible(model, "mnist", model.image_shape)
  features.check_compatible(model, "classes", (8, 8, 1))
  with pytest.raises(EvalError, match=r"takes images of shape \[8, 8, 1\], but "
                     r"'classes' has \[28, 28, 1\]"):
    features.check_compatible(model, "classes", (28, 28, 1))


def test_missing_classifier_error_names_the_command(tmp_path):
  with pytest.raises(EvalError, match="python -m jaxgan.classifier "
                     "--dataset=fashion_mnist"):
    clf.find_classifier("fashion_mnist", str(tmp_path))


def test_default_cache_is_under_xdg_cache_home(monkeypatch, tmp_path):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  assert clf.cache_path("mnist") == os.path.join(str(tmp_path), "jaxgan", "classifiers",
                                                 "mnist")
  monkeypatch.delenv("XDG_CACHE_HOME")
  monkeypatch.setenv("HOME", str(tmp_path))
  assert clf.cache_path("fashion_mnist") == os.path.join(
      str(tmp_path), ".cache", "jaxgan", "classifiers", "fashion_mnist")
