"""Bad data and bad flags: one clear message, exit code 2, no traceback, workdir untouched.

The IDX cases write small malformed files; the flag cases go through the real entry
point (`jaxgan.main.parse_flags` + `main.main`) in this process, so absl's own parsing
errors are covered too.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest
from absl.testing import flagsaver

from jaxgan import data, main
from jaxgan.config import Config
from jaxgan.errors import EXIT_USAGE, ConfigError, DataError


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
  header = b"\0\0" + bytes([code, array.ndim]) + struct.pack(f">{array.ndim}I",
                                                              *array.shape)
  return header + array.tobytes()


def write_folder(folder, images: bytes, labels: bytes, gz: bool = False) -> str:
  os.makedirs(folder, exist_ok=True)
  opener = gzip.compress if gz else (lambda b: b)
  suffix = ".gz" if gz else ""
  for stem in ("train", "t10k"):
    with open(os.path.join(folder, f"{stem}-images-idx3-ubyte{suffix}"), "wb") as f:
      f.write(opener(images))
    with open(os.path.join(folder, f"{stem}-labels-idx1-ubyte{suffix}"), "wb") as f:
      f.write(opener(labels))
  return str(folder)


GOOD_IMAGES = idx_bytes(np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3))
GOOD_LABELS = idx_bytes(np.array([0, 1, 2, 1], np.uint8))


def load(folder) -> data.Dataset:
  return data.load_dataset("bad", str(folder), "train")


# ------------------------------------------------------------------ IDX files
def test_a_good_tiny_folder_loads(tmp_path):
  ds = load(write_folder(tmp_path, GOOD_IMAGES, GOOD_LABELS, gz=True))
  assert ds.images.shape == (4, 3, 3, 1) and ds.num_classes == 3


def test_wrong_magic_number_is_named(tmp_path):
  folder = write_folder(tmp_path, b"\x00\x01" + GOOD_IMAGES[2:], GOOD_LABELS)
  with pytest.raises(DataError, match=r"train-images-idx3-ubyte: bad IDX magic number "
                     r"0x00010803"):
    load(folder)


def test_unknown_type_code_is_a_bad_magic_number(tmp_path):
  folder = write_folder(tmp_path, b"\0\0\x07\x03" + GOOD_IMAGES[4:], GOOD_LABELS)
  with pytest.raises(DataError, match="bad IDX magic number 0x00000703"):
    load(folder)


def test_images_with_wrong_dimensions_are_refused(tmp_path):
  flat = idx_bytes(np.zeros((4, 9), np.uint8))  # 2-D "images".
  with pytest.raises(DataError, match=r"expected uint8 images \[N, H, W\], got uint8 "
                     r"\[4, 9\]"):
    load(write_folder(tmp_path, flat, GOOD_LABELS))


def test_truncated_data_is_refused_with_byte_counts(tmp_path):
  with pytest.raises(DataError, match=r"dimensions \[4, 3, 3\] need 36 bytes of data "
                     r"but the file holds 30"):
    load(write_folder(tmp_path, GOOD_IMAGES[:-6], GOOD_LABELS))


def test_truncated_header_is_refused(tmp_path):
  with pytest.raises(DataError, match=r"truncated IDX header \(3 dimensions"):
    load(write_folder(tmp_path, GOOD_IMAGES[:9], GOOD_LABELS))


def test_bad_gzip_stream_is_refused(tmp_path):
  broken = gzip.compress(GOOD_IMAGES)[:-10]  # Cut: the stream ends early.
  folder = write_folder(tmp_path, GOOD_IMAGES, GOOD_LABELS)
  os.remove(os.path.join(folder, "train-images-idx3-ubyte"))
  with open(os.path.join(folder, "train-images-idx3-ubyte.gz"), "wb") as f:
    f.write(broken)
  with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: not a valid gzip "
                     "stream"):
    load(folder)


def test_empty_dataset_is_refused(tmp_path):
  empty = write_folder(tmp_path, idx_bytes(np.zeros((0, 3, 3), np.uint8)),
                       idx_bytes(np.zeros((0,), np.uint8)))
  with pytest.raises(DataError, match="holds no images"):
    load(empty)


def test_label_count_must_match_images(tmp_path):
  labels = idx_bytes(np.array([0, 1, 2], np.uint8))
  with pytest.raises(DataError, match=r"expected 4 integer labels .* got uint8 \[3\]"):
    load(write_folder(tmp_path, GOOD_IMAGES, labels))


def test_missing_files_name_the_expected_ones(tmp_path):
  with pytest.raises(DataError, match="has no train-images-idx3-ubyte"):
    load(tmp_path)


# ------------------------------------------------------------------ flags and config
@pytest.mark.parametrize("overrides, message", [
    (dict(num_steps=0, num_epochs=0.0), "--num_steps=0 is invalid"),
    (dict(lr_g=-1e-3), "--lr_g=-0.001 is invalid: expected a finite learning rate > 0"),
    (dict(lr_d=float("nan")), "--lr_d=nan is invalid"),
    (dict(num_d_steps=0), "--num_d_steps=0 is invalid: expected an integer >= 1"),
    (dict(latent_dim=0), "--latent_dim=0 is invalid"),
    (dict(b1=1.0), "--b1=1.0 is invalid: expected a number in [0, 1)"),
    (dict(seed=-1), "--seed=-1 is invalid"),
    (dict(num_steps=2**31), "--num_steps=2147483648 is invalid: expected at most"),
    (dict(num_steps=10, num_epochs=2.0), "contradict each other"),
    (dict(lr_decay=1.0001), "--lr_decay=1.0001 only applies to --optimizer=sgd"),
    (dict(optimizer="sgd", min_lr=1.0), "--min_lr=1.0 is invalid: expected a floor"),
    (dict(update_order="simultaneous", num_d_steps=2), "cannot be combined"),
    (dict(model="resnet"), "--model='resnet' is invalid: expected one of"),
    (dict(latent_dim="100"), "--latent_dim='100' is invalid: expected an int"),
    (dict(batch_size=True), "--batch_size=True is invalid: expected an int"),
])
def test_invalid_config_names_the_flag(overrides, message):
  with pytest.raises(ConfigError) as info:
    Config(**{"num_steps": 10, **overrides}).validate()
  assert message in str(info.value)


def run_main(argv: list[str], capsys) -> tuple[int, str]:
  """Runs the entry point on argv in this process; returns (exit code, stderr)."""
  with flagsaver.flagsaver():
    code = 0
    try:
      rest = main.parse_flags(["jaxgan", *argv])
      main.main(rest)
    except SystemExit as e:
      code = e.code
  return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--num_steps=abc"], "jaxgan: error: flag --num_steps=abc: invalid literal for int"),
    (["--no_such_flag=1"], "jaxgan: error: Unknown command line flag 'no_such_flag'"),
    (["--flagfile=/nonexistent.flags"], "Unable to open flagfile"),
    (["stray"], "jaxgan: error: unexpected arguments ['stray']"),
    (["--num_steps=5", "--lr_g=-1"], "jaxgan: error: --lr_g=-1.0 is invalid"),
])
def test_bad_command_lines_exit_2_with_one_message(argv, message, tmp_path, capsys):
  workdir = tmp_path / "run"
  code, err = run_main([f"--workdir={workdir}", *argv], capsys)
  assert code == EXIT_USAGE
  assert message in err
  assert "Traceback" not in err
  assert not workdir.exists()


def test_bad_data_folder_exits_2_and_creates_no_workdir(tmp_path, capsys):
  folder = write_folder(tmp_path / "idx", GOOD_IMAGES[:-1], GOOD_LABELS)
  workdir = tmp_path / "run"
  code, err = run_main([f"--workdir={workdir}", f"--data_dir={folder}", "--num_steps=2",
                        "--batch_size=2"], capsys)
  assert code == EXIT_USAGE
  assert "jaxgan: error: IDX file" in err and "truncated or corrupted" in err
  assert "Traceback" not in err
  assert not workdir.exists()


def test_workdir_that_is_a_file_exits_2_and_is_left_alone(tmp_path, capsys):
  folder = write_folder(tmp_path / "idx", GOOD_IMAGES, GOOD_LABELS)
  not_a_folder = tmp_path / "run"
  not_a_folder.write_text("precious")
  code, err = run_main([f"--workdir={not_a_folder}", f"--data_dir={folder}",
                        "--num_steps=2", "--batch_size=2"], capsys)
  assert code == EXIT_USAGE
  assert "exists and is not a folder" in err and "Traceback" not in err
  assert not_a_folder.read_text() == "precious"
