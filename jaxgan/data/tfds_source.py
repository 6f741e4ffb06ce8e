"""tfds datasets, loaded whole into memory (downloaded by tfds when needed)."""

from __future__ import annotations

import numpy as np

from jaxgan.data.dataset import Dataset, aligned_empty
from jaxgan.errors import DataError


def load_tfds_split(name: str, split: str) -> Dataset:
  """Loads a whole tfds split into memory (downloading it if tfds must)."""
  try:
    import tensorflow_datasets as tfds  # Imported lazily: heavy, and TF comes with it.
  except ImportError as e:
    raise DataError(f"--dataset={name!r} needs tensorflow-datasets ({e}); install "
                    "requirements.txt or use --data_dir with local IDX files.") from None
  try:
    builder = tfds.builder(name)
  except Exception as e:  # tfds raises DatasetNotFoundError and friends.
    raise DataError(
        f"--dataset={name!r} is not a dataset tfds knows ({type(e).__name__}); "
        "expected a tfds image dataset name such as 'mnist' or 'fashion_mnist', or "
        "--data_dir with local IDX files.") from None
  try:
    if not builder.is_prepared():
      # tfds retries each URL 10 times with exponential backoff (~200 s offline before
      # it gives up); 3 retries fail an offline machine in seconds and still ride out
      # a flaky connection.
      from tensorflow_datasets.core.download import downloader
      downloader.MAX_RETRIES = min(downloader.MAX_RETRIES, 3)
    builder.download_and_prepare()
    # Large fixed batches, concatenated: batch_size=-1 trusts the split's recorded size,
    # which mock data and some community datasets do not record.
    batches = list(tfds.as_numpy(builder.as_dataset(split=split, batch_size=8192,
                                                    as_supervised=True)))
  except Exception as e:
    raise DataError(
        f"could not download or prepare tfds dataset {name!r} "
        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
        "Offline, point --data_dir at a folder with the MNIST-format IDX files, e.g. "
        "--data_dir=/usr/share/datasets/fashion-mnist (Debian package "
        "dataset-fashion-mnist).") from None
  if not batches:
    raise DataError(f"tfds dataset {name!r} split {split!r} is empty.")
  parts = [np.asarray(b[0], np.uint8) for b in batches]
  images = np.concatenate(parts, out=aligned_empty(
      (sum(len(p) for p in parts),) + parts[0].shape[1:]))
  labels = np.concatenate([np.asarray(b[1]) for b in batches])
  if images.ndim == 3:
    images = images[..., None]
  num_classes = builder.info.features["label"].num_classes
  return Dataset(name=name, images=images, labels=np.asarray(labels, np.int32),
                 num_classes=int(num_classes))

