"""Fuzzing (hypothesis): the IDX reader and Config.validate never fail in another way
than the project's own errors. Runs in a few seconds (no jax compilation)."""

from __future__ import annotations

import dataclasses
import gzip
import math
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from jaxgan import data
from jaxgan.config import Config
from jaxgan.errors import ConfigError, DataError

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def parse_or_data_error(raw: bytes):
  try:
    return data.parse_idx(raw)
  except DataError:
    return None


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_data_error(raw):
  array = parse_or_data_error(raw)
  if array is not None:
    assert isinstance(array, np.ndarray) and array.ndim >= 1


@st.composite
def idx_like(draw):
  """Headers that are nearly right: real type codes, small or huge dims, data that
  fits, is short or long; sometimes gzipped, sometimes with a damaged gzip stream."""
  code = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x07]))
  ndim = draw(st.integers(0, 70))
  dims = draw(st.lists(st.one_of(st.integers(0, 4), st.integers(0, 2**32 - 1)),
                       min_size=ndim, max_size=ndim))
  itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(code, 1)
  size = math.prod(dims) * itemsize
  length = draw(st.sampled_from(["exact", "short", "long"]))
  n = min(size, 512) + {"exact": 0, "short": -1, "long": 1}[length]
  raw = (b"\0\0" + bytes([code, ndim]) + struct.pack(f">{ndim}I", *dims)
         + draw(st.binary(min_size=max(n, 0), max_size=max(n, 0))))
  wrap = draw(st.sampled_from(["plain", "gzip", "gzip_cut", "gzip_flip"]))
  if wrap != "plain":
    raw = gzip.compress(raw)
    if wrap == "gzip_cut":
      raw = raw[:draw(st.integers(2, len(raw) - 1))]
    elif wrap == "gzip_flip":
      i = draw(st.integers(10, len(raw) - 1))
      raw = raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:]
  return raw, code, dims


@FUZZ
@given(idx_like())
def test_near_valid_idx_parses_to_its_dims_or_raises_data_error(case):
  raw, code, dims = case
  array = parse_or_data_error(raw)
  if array is not None:
    assert list(array.shape) == dims
    assert array.dtype.itemsize == {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4,
                                    0x0E: 8}[code]


def field_values(field: dataclasses.Field):
  """Values of the field's type, edge cases included, plus values of other types."""
  kind = type(field.default)
  wrong = st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.lists(st.integers(),
                                                                           max_size=2))
  if kind is bool:
    right = st.booleans()
  elif kind is int:
    right = st.one_of(st.integers(-3, 5), st.integers(-2**40, 2**40),
                      st.just(field.default))
  elif kind is float:
    right = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                      st.floats(-2.0, 2.0), st.just(field.default))
  else:
    right = st.one_of(st.text(max_size=12), st.just(field.default),
                      st.sampled_from(["mnist", "mlp", "paper_mlp", "minimax", "sgd",
                                       "adam", "simultaneous", "g_then_d", ""]))
  return st.one_of(right, right, right, wrong)  # Mostly the right type.


@st.composite
def configs(draw):
  fields = dataclasses.fields(Config)
  chosen = draw(st.lists(st.sampled_from(fields), max_size=6, unique_by=lambda f: f.name))
  return {f.name: draw(field_values(f)) for f in chosen}


@FUZZ
@given(configs())
def test_any_config_validates_or_raises_config_error(overrides):
  config = Config(**{"num_steps": 10, **overrides})
  try:
    config.validate()
  except ConfigError as e:
    assert str(e)  # A message, never empty.
    return
  # Valid: the loop's arithmetic works on it.
  for num_examples in (config.batch_size, 60000):
    steps = config.steps_for(num_examples)
    assert isinstance(steps, int) and steps >= 1
