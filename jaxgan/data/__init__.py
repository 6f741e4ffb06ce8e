"""Data sources and the on-device batch order.

A dataset is loaded whole into host memory as uint8 images `[N, H, W, C]` plus int32
labels `[N]`, then put on the device once; training steps gather batches from it by index
(`batch_indices`), so no host work happens per step.

Sources, chosen by flags:
  * `--data_dir=FOLDER`: the four MNIST-format IDX files (gzipped or not) read directly
    (`jaxgan.data.idx`), no TensorFlow import, no download. The data is named after its
    folder (`/usr/share/datasets/fashion-mnist` -> `fashion_mnist`): that name, not
    `--dataset`, is what evaluation and the classifier cache look up.
  * `--dataset=toy_*`: a generated toy problem (`jaxgan.data.toy`).
  * `--dataset=NAME` otherwise: a tfds dataset, downloaded by tfds if needed
    (`jaxgan.data.tfds_source`).
"""

from __future__ import annotations

import os
import re

from jaxgan.data.dataset import Dataset, aligned_empty, hold_out
from jaxgan.data.idx import load_idx_split, parse_idx, read_idx, read_idx_stream
from jaxgan.data.order import (batch_indices, from_pixels, gather_batch,
                               shuffled_positions, to_pixels)
from jaxgan.errors import ConfigError, DataError

SPLITS = ("train", "test")
TOY_PREFIX = "toy_"

__all__ = ["Dataset", "SPLITS", "aligned_empty", "batch_indices", "check_batch_fits",
           "check_dataset_name", "data_name", "from_pixels", "gather_batch", "hold_out",
           "is_toy", "load_dataset", "load_idx_split", "parse_idx", "read_idx",
           "read_idx_stream", "shuffled_positions", "to_pixels"]


def is_toy(dataset: str) -> bool:
  return dataset.startswith(TOY_PREFIX)


def data_name(dataset: str, data_dir: str = "") -> str:
  """The name the data carries: its folder's name for `data_dir` (lowercase, runs of
  other characters as '_': 'fashion-mnist' -> 'fashion_mnist'), else `dataset`."""
  if not data_dir:
    return dataset
  base = os.path.basename(os.path.abspath(os.path.expanduser(data_dir)))
  return re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_") or "data"


def check_dataset_name(name: str) -> None:
  """Cheap syntactic check; whether tfds knows the name is checked when loading."""
  if not name or not all(c.isalnum() or c in "_-/:." for c in name):
    raise ConfigError(f"--dataset={name!r} is invalid: expected a dataset name such "
                      "as 'mnist' or 'fashion_mnist'.")


def load_dataset(dataset: str, data_dir: str = "", split: str = "train") -> Dataset:
  """Loads `split` of a toy_* problem, of the IDX folder `data_dir` (named after the
  folder), or of the tfds dataset `dataset`."""
  if split not in SPLITS:
    raise DataError(f"split {split!r} is not one of {SPLITS}.")
  if is_toy(dataset) and not data_dir:
    from jaxgan.data import toy
    return toy.load(dataset, split)
  if data_dir:
    return load_idx_split(data_dir, split, name=data_name(dataset, data_dir))
  from jaxgan.data.tfds_source import load_tfds_split
  return load_tfds_split(dataset, split)


def check_batch_fits(ds: Dataset, batch_size: int, pack: int = 1) -> None:
  if batch_size * pack > ds.num_examples:
    raise ConfigError(f"--batch_size={batch_size}{f' x --pack={pack}' if pack > 1 else ''}"
                      f" needs more examples than the dataset {ds.name!r} has "
                      f"({ds.num_examples} for training); expected at most "
                      f"{ds.num_examples // pack} per batch.")


def training_split(ds: Dataset, num_valid: int, batch_size: int, pack: int = 1
                   ) -> Dataset:
  """The training examples of a loaded train split: all of them, or without the last
  --num_valid (held out as valid_images). Raises ConfigError when too few remain."""
  if num_valid >= ds.num_examples:
    raise ConfigError(f"--num_valid={num_valid} holds out the whole training split of "
                      f"{ds.name!r} ({ds.num_examples} examples); expected fewer.")
  train = hold_out(ds, num_valid)
  check_batch_fits(train, batch_size, pack)
  return train
