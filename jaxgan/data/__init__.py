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

What a run trains on is `load_training_split(config)`: the train split less the last
--num_valid examples (held out), cut to a fixed --train_subset=N chosen by
--train_subset_seed; evaluation always scores against the whole test split.
"""

from __future__ import annotations

import os
import re

from jaxgan.data.dataset import Dataset, aligned_empty, hold_out, subset
from jaxgan.data.idx import load_idx_split, parse_idx, read_idx, read_idx_stream
from jaxgan.data.order import (batch_indices, from_pixels, gather_batch,
                               shuffled_positions, to_pixels)
from jaxgan.errors import ConfigError, DataError

SPLITS = ("train", "test")
TOY_PREFIX = "toy_"

__all__ = ["Dataset", "SPLITS", "aligned_empty", "batch_indices", "check_batch_fits",
           "check_dataset_name", "data_name", "from_pixels", "gather_batch", "hold_out",
           "is_toy", "load_dataset", "load_idx_split", "load_training_split",
           "parse_idx", "read_idx", "read_idx_stream", "shuffled_positions", "subset",
           "to_pixels", "training_split"]


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


def load_training_split(config, ds: Dataset | None = None) -> Dataset:
  """The examples a run of `config` (a jaxgan.config.Config) trains on: its train split
  (`ds` when already loaded), cut by `training_split` with the config's --num_valid,
  --batch_size, --pack, --train_subset and --train_subset_seed (training and the
  evaluation of a workdir both take it from here)."""
  if ds is None:
    ds = load_dataset(config.dataset, config.data_dir, "train")
  return training_split(ds, config.num_valid, config.batch_size, config.pack,
                        config.train_subset, config.train_subset_seed)


def training_split(ds: Dataset, num_valid: int, batch_size: int, pack: int = 1,
                   train_subset: int = 0, train_subset_seed: int = 0) -> Dataset:
  """The examples a run trains on, from a loaded train split: all of them, or without
  the last --num_valid (held out as valid_images); of those, with --train_subset=N > 0,
  the fixed N chosen by --train_subset_seed (`dataset.subset`), before any batching, so
  the batch order draws from them alone. The subset does not depend on the run's
  --seed: the members of a seed sweep share one copy of the data, and a data-size table
  needs several seeds on one subset. Raises ConfigError when too few examples remain."""
  if num_valid >= ds.num_examples:
    raise ConfigError(f"--num_valid={num_valid} holds out the whole training split of "
                      f"{ds.name!r} ({ds.num_examples} examples); expected fewer.")
  train = hold_out(ds, num_valid)
  if train_subset > train.num_examples:
    left = f" left by --num_valid={num_valid}" if num_valid else ""
    raise ConfigError(f"--train_subset={train_subset} is more than the "
                      f"{train.num_examples} training examples of {ds.name!r}{left}; "
                      f"expected at most {train.num_examples} (0 = all).")
  if train_subset:
    train = subset(train, train_subset, train_subset_seed)
  check_batch_fits(train, batch_size, pack)
  return train
