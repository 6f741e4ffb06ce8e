"""Shared helpers for the sweep tests: a tiny IDX dataset and a tiny config."""

from __future__ import annotations

import csv
import os
import struct

import numpy as np

from jaxgan.config import Config


def write_idx(path: str, array: np.ndarray) -> None:
  header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
  header += struct.pack(f">{array.ndim}I", *array.shape)
  with open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def tiny_idx_dir(folder: str, n: int = 64, side: int = 8) -> str:
  """A folder of MNIST-format IDX files: n random side x side images, 10 labels."""
  rng = np.random.default_rng(0)
  os.makedirs(folder, exist_ok=True)
  for stem, count in (("train", n), ("t10k", n // 4)):
    write_idx(os.path.join(folder, f"{stem}-images-idx3-ubyte"),
              rng.integers(0, 256, (count, side, side)))
    write_idx(os.path.join(folder, f"{stem}-labels-idx1-ubyte"),
              rng.integers(0, 10, (count,)))
  return folder


def tiny_config(data_dir: str, **overrides) -> Config:
  base = dict(dataset="tiny", data_dir=data_dir, model="mlp", latent_dim=4,
              batch_size=8, num_steps=3, log_every=1, sample_every=0,
              checkpoint_every=0, sample_grid=2)
  base.update(overrides)
  return Config(**base)


def read_results(workdir: str) -> list[dict]:
  """The rows of a sweep's results CSV (jaxgan.sweep.RESULTS_CSV), best rank first."""
  from jaxgan import sweep
  with open(os.path.join(workdir, sweep.RESULTS_CSV)) as f:
    return list(csv.DictReader(f))
