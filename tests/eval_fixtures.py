"""A tiny labelled image dataset with known classes, for the evaluation tests."""

import os
import struct

import numpy as np


SHAPE = (8, 8)


def make_images(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Three classes anyone can tell apart: bright top half, bright bottom half, dark;
  plus noise. Returns uint8 [num, 8, 8] and int labels [num]."""
  rng = np.random.default_rng(seed)
  labels = np.arange(num) % 3
  images = rng.uniform(0, 60, size=(num,) + SHAPE)
  images[labels == 0, :4] += 180
  images[labels == 1, 4:] += 180
  return images.clip(0, 255).astype(np.uint8), labels.astype(np.int32)


def _idx(array: np.ndarray) -> bytes:
  code = 0x08
  return (b"\x00\x00" + bytes([code, array.ndim])
          + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes())


def write_idx_folder(folder: str, num_train: int = 120, num_test: int = 60) -> str:
  """Writes the four MNIST-format IDX files of a tiny dataset into `folder`."""
  os.makedirs(folder, exist_ok=True)
  for stem, num, seed in (("train", num_train, 0), ("t10k", num_test, 1)):
    images, labels = make_images(num, seed)
    with open(os.path.join(folder, f"{stem}-images-idx3-ubyte"), "wb") as f:
      f.write(_idx(images))
    with open(os.path.join(folder, f"{stem}-labels-idx1-ubyte"), "wb") as f:
      f.write(_idx(labels))
  return folder


_CACHE: dict = {}


def trained_tiny_classifier():
  """(data_dir, classifier) for the tiny dataset, trained once per test process and
  shared by the test modules (training and its compilation are the slow part)."""
  if "tiny" not in _CACHE:
    import tempfile

    from jaxgan import data
    from jaxgan.eval import classifier as clf
    data_dir = write_idx_folder(os.path.join(tempfile.mkdtemp(prefix="jaxgan_eval_"),
                                             "data"))
    train = data.load_dataset("tiny", data_dir, "train")
    test = data.load_dataset("tiny", data_dir, "test")
    model = clf.train_classifier(train, test, epochs=4, batch_size=32,
                                 learning_rate=3e-3, log=lambda *_: None)
    _CACHE["tiny"] = (data_dir, model)
  return _CACHE["tiny"]


def cached_tiny_classifier(root) -> tuple[str, object, str]:
  """(data_dir, classifier, cache): the tiny classifier saved in the classifier cache
  folder root/classifiers, where training runs look it up (--classifier_dir)."""
  from jaxgan.eval import classifier as clf
  data_dir, model = trained_tiny_classifier()
  cache = os.path.join(str(root), "classifiers")
  clf.save_classifier(model, clf.cache_path("tiny", cache))
  return data_dir, model, cache
