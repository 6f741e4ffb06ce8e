"""Reading anyone's generated samples: a .npy/.npz array or a folder of PNG files.

    images, info = load_samples("samples.npy", image_shape=(28, 28, 1),
                                value_range=(-1.0, 1.0))

The rules (each broken one raises EvalError naming the file, the flag and what is
expected; the command line prints it and exits 2):

  * Arrays (.npy, or .npz with one array or --samples_key) are [N, H, W, C] or, for
    one channel, [N, H, W], with (H, W, C) the feature network's image shape.
    PyTorch's [N, C, H, W] is accepted when the shape says so unambiguously: shape[1:]
    is (C, H, W) and not (H, W, C). Its layout is recorded in the results.
  * uint8 arrays are pixels 0..255. Float arrays need their range (`value_range`,
    --samples_range=LO,HI: -1,1 for a tanh generator such as PyTorch-GAN's, 0,1 for a
    sigmoid one); values within 1% of the range's width outside it are clipped (float
    rounding), anything further out is an error, as are NaN and Inf. Other dtypes are
    refused.
  * A folder holds one sample per .png file (sorted by name; other files ignored),
    each H × W; converted to grayscale ('L') for one channel, RGB for three. A PNG
    of another size, e.g. a grid of samples, is an error.

Images come back as uint8 [N, H, W, C], or float32 [N, H, W, C] in [0, 1].
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jaxgan.errors import EvalError

RANGE_SLACK = 0.01  # Fraction of the range's width tolerated (and clipped) outside it.


def parse_range(text: str, flag: str = "--samples_range") -> tuple[float, float]:
  """'LO,HI' -> (lo, hi) with lo < hi, both finite; EvalError otherwise."""
  try:
    lo, hi = (float(v) for v in text.split(","))
  except ValueError:
    raise EvalError(f"{flag}={text!r} is not a range: expected two numbers LO,HI, "
                    "e.g. -1,1 (tanh output) or 0,1.") from None
  if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
    raise EvalError(f"{flag}={text!r}: expected finite LO < HI, e.g. -1,1.")
  return lo, hi


def load_samples(path: str, image_shape: tuple[int, int, int] | None,
                 value_range: tuple[float, float] | None = None,
                 key: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
  """The samples at `path` as [N, H, W, C] (uint8, or float32 in [0, 1]) and a
  description {"format", "layout", "dtype", "range"} for the results. Rules: module
  docstring. key: the array of an .npz file that holds several. image_shape None: a
  network that takes any size (Inception): the array's own size, 1 or 3 channels
  (`any_size_shape`); PNG files as RGB at the first file's size, as pytorch-fid reads
  them."""
  if not os.path.exists(path):
    raise EvalError(f"--samples={path!r}: no such file or folder; expected a .npy or "
                    ".npz array or a folder of .png files.")
  if os.path.isdir(path):
    if value_range is not None:
      raise EvalError(f"--samples_range applies to float arrays; the PNG files in "
                      f"--samples={path!r} are read as pixels 0..255: drop the flag.")
    return _load_png_folder(path, image_shape or _first_png_shape(path)), {
        "format": "png", "layout": "png", "dtype": "uint8", "range": [0, 255]}
  lower = path.lower()
  if lower.endswith(".npy"):
    array, fmt = _load_npy(path), "npy"
  elif lower.endswith(".npz"):
    array, fmt = _load_npz(path, key), "npz"
  else:
    raise EvalError(f"--samples={path!r}: expected a .npy or .npz file or a folder of "
                    ".png files.")
  if image_shape is None:
    image_shape = any_size_shape(array, path)
  array, layout = to_nhwc(array, image_shape, path)
  images, info = to_unit(array, value_range, path)
  return images, {"format": fmt, "layout": layout, **info}


def _load_npy(path: str) -> np.ndarray:
  try:
    return np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise EvalError(f"--samples={path!r} is not a readable .npy array of numbers "
                    f"({e}).") from None


def _load_npz(path: str, key: str | None) -> np.ndarray:
  try:
    archive = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise EvalError(f"--samples={path!r} is not a readable .npz archive ({e}).") from None
  with archive:
    names = list(archive.files)
    if key is None:
      if len(names) != 1:
        raise EvalError(f"--samples={path!r} holds {len(names)} arrays {names}: name "
                        "the samples with --samples_key=NAME.")
      key = names[0]
    elif key not in names:
      raise EvalError(f"--samples_key={key!r} is not in --samples={path!r}; its arrays "
                      f"are {names}.")
    try:
      return archive[key]
    except ValueError as e:
      raise EvalError(f"--samples={path!r}: array {key!r} is not readable ({e}).") from None


def any_size_shape(array: np.ndarray, path: str = "array") -> tuple[int, int, int]:
  """(H, W, C) of samples for a network that takes any image size and 1 or 3 channels:
  [N, H, W] grey, [N, H, W, C] with C in (1, 3), else PyTorch's [N, C, H, W]."""
  shape = tuple(array.shape)
  if len(shape) == 3:
    return shape[1], shape[2], 1
  if len(shape) == 4 and shape[3] in (1, 3):
    return shape[1], shape[2], shape[3]
  if len(shape) == 4 and shape[1] in (1, 3):
    return shape[2], shape[3], shape[1]
  raise EvalError(f"--samples={path!r} has shape {list(shape)}; expected images "
                  "[N, H, W], [N, H, W, C] or PyTorch's [N, C, H, W] with C = 1 (grey) "
                  "or 3 (RGB).")


def to_nhwc(array: np.ndarray, image_shape: tuple[int, int, int], path: str = "array"
            ) -> tuple[np.ndarray, str]:
  """[N, H, W, C] | [N, H, W] (C = 1) | [N, C, H, W] (when not also [N, H, W, C]) ->
  ([N, H, W, C], the layout read); EvalError for any other shape."""
  h, w, c = (int(v) for v in image_shape)
  shape = tuple(array.shape)
  if len(shape) == 4 and shape[1:] == (h, w, c):
    return array, "NHWC"
  if len(shape) == 3 and c == 1 and shape[1:] == (h, w):
    return array[..., None], "NHW"
  if len(shape) == 4 and shape[1:] == (c, h, w):
    return np.transpose(array, (0, 2, 3, 1)), "NCHW"
  expected = [f"[N, {h}, {w}, {c}]"] + ([f"[N, {h}, {w}]"] if c == 1 else []) + [
      f"[N, {c}, {h}, {w}] (PyTorch's layout)"]
  raise EvalError(f"--samples={path!r} has shape {list(shape)}; the feature network "
                  f"takes {h}x{w} images with {c} channel{'s' if c > 1 else ''}: "
                  f"expected {' or '.join(expected)}.")


def to_unit(array: np.ndarray, value_range: tuple[float, float] | None,
            path: str = "array") -> tuple[np.ndarray, dict[str, Any]]:
  """uint8 as is; float mapped from value_range to [0, 1] (float32); the rules of the
  module docstring. Returns (images, {"dtype", "range"})."""
  if array.dtype == np.uint8:
    if value_range is not None and tuple(value_range) != (0.0, 255.0):
      raise EvalError(f"--samples={path!r} is uint8 (pixels 0..255); --samples_range "
                      "applies to float arrays: drop it.")
    return array, {"dtype": "uint8", "range": [0, 255]}
  if not np.issubdtype(array.dtype, np.floating):
    raise EvalError(f"--samples={path!r} has dtype {array.dtype}; expected uint8 "
                    "(0..255) or float with --samples_range=LO,HI.")
  if array.size == 0:
    return array.astype(np.float32), {"dtype": str(array.dtype), "range": value_range}
  bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
  if bad:
    raise EvalError(f"--samples={path!r} has {bad} non-finite value(s) (NaN or Inf); "
                    "expected finite pixels.")
  lo_seen, hi_seen = float(array.min()), float(array.max())
  if value_range is None:
    raise EvalError(f"--samples={path!r} is {array.dtype} with values in "
                    f"[{lo_seen:.4g}, {hi_seen:.4g}]: give their range with "
                    "--samples_range=LO,HI (-1,1 for a tanh generator, 0,1 for a "
                    "sigmoid one).")
  lo, hi = value_range
  slack = RANGE_SLACK * (hi - lo)
  if lo_seen < lo - slack or hi_seen > hi + slack:
    raise EvalError(f"--samples={path!r} has values in [{lo_seen:.4g}, {hi_seen:.4g}], "
                    f"outside --samples_range={lo:g},{hi:g}: expected values in that "
                    "range (give the range the generator outputs).")
  unit = (array.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)
  return np.clip(unit, 0.0, 1.0), {"dtype": str(array.dtype), "range": [lo, hi]}


def _load_png_folder(folder: str, image_shape: tuple[int, int, int]) -> np.ndarray:
  from PIL import Image
  h, w, c = (int(v) for v in image_shape)
  names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".png"))
  if not names:
    raise EvalError(f"--samples={folder!r} is a folder without .png files; expected "
                    "one .png per sample (or a .npy/.npz array).")
  images = np.empty((len(names), h, w, c), np.uint8)
  for i, name in enumerate(names):
    file = os.path.join(folder, name)
    try:
      with Image.open(file) as img:
        array = np.asarray(img.convert("L" if c == 1 else "RGB"))
    except OSError as e:
      raise EvalError(f"{file!r} is not a readable PNG ({e}).") from None
    if array.shape[:2] != (h, w):
      raise EvalError(f"{file!r} is {array.shape[1]}x{array.shape[0]} pixels; the "
                      f"feature network takes {w}x{h}: expected one {w}x{h} sample per "
                      "file (a grid of samples must be cut into single images).")
    images[i] = array.reshape(h, w, c)
  return images


def _first_png_shape(folder: str) -> tuple[int, int, int]:
  """(H, W, 3) of the folder's first PNG: pytorch-fid reads every PNG as RGB."""
  from PIL import Image
  names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".png"))
  if not names:
    raise EvalError(f"--samples={folder!r} is a folder without .png files; expected "
                    "one .png per sample (or a .npy/.npz array).")
  file = os.path.join(folder, names[0])
  try:
    with Image.open(file) as img:
      width, height = img.size
  except OSError as e:
    raise EvalError(f"{file!r} is not a readable PNG ({e}).") from None
  return height, width, 3
