"""Reading a PyTorch state dict (`torch.save(model.state_dict(), PATH)`) without torch.

    arrays = read_state_dict("pt_inception-2015-12-05-6726825d.pth")  # {key: np.ndarray}

torch.save has written two formats, and files of both are in use:

  * the zip format (torch >= 1.6's default): a zip archive whose `<name>/data.pkl` is a
    pickle of the object, with each storage in `<name>/data/<key>` and the byte order
    in `<name>/byteorder`;
  * the legacy format (`_use_new_zipfile_serialization=False`, and every file written
    before torch 1.6, e.g. pytorch-fid's Inception weights): five pickles in a row
    (magic number, protocol version, system info, the object, the list of storage
    keys), then each storage as an int64 element count and its raw bytes, little-endian,
    in the order of that list.

In both the object's pickle names storages by persistent id ('storage', type, key,
location, numel[, view]) and rebuilds tensors with `torch._utils._rebuild_tensor_v2`.
The unpickler here allows only the globals a state dict of plain tensors needs (an
allow-list: a .pth file is a pickle, and unpickling arbitrary globals runs code); any
other global is refused with its name, as torch.load(weights_only=True) does.
Errors are `EvalError` naming the file and what is expected.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from typing import Any, BinaryIO

import numpy as np

from jaxgan.errors import EvalError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch/serialization.py
PROTOCOL_VERSION = 1001

# torch's typed storages (torch.FloatStorage, ...) as pickled by both formats.
STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
  """Stands in for a class such as torch.FloatStorage in the pickle."""

  def __init__(self, name: str):
    self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


class _Storage:
  """One storage: filled with its data once the file's storages are read."""

  def __init__(self, dtype: np.dtype, numel: int):
    self.dtype, self.numel = dtype, numel
    self.data: np.ndarray | None = None


class _Tensor:
  """A tensor of a storage not yet read: (storage, offset, size, stride)."""

  def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

  def array(self) -> np.ndarray:
    data = self.storage.data
    if not self.size:
      return data[self.offset].copy()
    itemsize = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[self.offset:], shape=tuple(self.size),
        strides=tuple(s * itemsize for s in self.stride))
    return np.array(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  return _Tensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
  return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
  return data


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
}


class _Unpickler(pickle.Unpickler):

  def __init__(self, file: BinaryIO, path: str):
    super().__init__(file, encoding="utf-8")
    self.path = path
    self.storages: dict[str, _Storage] = {}

  def find_class(self, module: str, name: str) -> Any:
    if module == "torch" and name in STORAGE_DTYPES:
      return _StorageType(name)
    if (module, name) in ALLOWED:
      return ALLOWED[(module, name)]
    raise EvalError(f"{self.path!r} is not a state dict of plain tensors: its pickle "
                    f"needs {module}.{name}; expected a file written by "
                    "torch.save(model.state_dict(), PATH).")

  def persistent_load(self, saved_id: Any) -> _Storage:
    if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] in ("storage",
                                                                           b"storage")):
      raise EvalError(f"{self.path!r}: unknown persistent id {saved_id!r} in its "
                      "pickle; expected torch storages.")
    storage_type, key, _location, numel = saved_id[1:5]
    if not isinstance(storage_type, _StorageType):
      raise EvalError(f"{self.path!r}: a storage of type {storage_type!r}; expected one "
                      f"of {sorted(STORAGE_DTYPES)}.")
    if len(saved_id) > 5 and saved_id[5] is not None:
      raise EvalError(f"{self.path!r}: storage views (torch < 0.4 files) are not read.")
    key = key.decode() if isinstance(key, bytes) else str(key)
    if key not in self.storages:
      self.storages[key] = _Storage(storage_type.dtype, int(numel))
    return self.storages[key]


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """{key: array} of a file written by `torch.save(state_dict, path)`, in either format
  (module docstring). EvalError for a file that is neither, or holds something other
  than a dict of tensors."""
  try:
    is_zip = zipfile.is_zipfile(path)
    with open(path, "rb") as f:
      obj, storages = _read_zip(path) if is_zip else _read_legacy(f, path)
  except EvalError:
    raise
  except (OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError,
          KeyError, TypeError, IndexError, AttributeError) as e:
    raise EvalError(f"{path!r} is not a readable torch.save file ({type(e).__name__}: "
                    f"{e}); expected a state dict saved by torch.save.") from None
  if not isinstance(obj, dict):
    raise EvalError(f"{path!r} holds a {type(obj).__name__}, not a state dict; expected "
                    "torch.save(model.state_dict(), PATH).")
  out = {}
  for key, value in obj.items():
    if not isinstance(value, _Tensor):
      raise EvalError(f"{path!r}: entry {key!r} is a {type(value).__name__}, not a "
                      "tensor; expected a state dict of tensors.")
    out[str(key)] = value.array()
  del storages
  return out


def _read_zip(path: str) -> tuple[Any, dict[str, _Storage]]:
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
      raise EvalError(f"{path!r} is a zip archive without one data.pkl; expected a "
                      "file written by torch.save.")
    prefix = pickles[0][:-len("data.pkl")]
    if prefix + "byteorder" in names:
      order = archive.read(prefix + "byteorder").decode().strip()
      if order != "little":
        raise EvalError(f"{path!r} was written {order}-endian; expected little-endian.")
    with archive.open(pickles[0]) as f:
      unpickler = _Unpickler(f, path)
      obj = unpickler.load()
    for key, storage in unpickler.storages.items():
      raw = archive.read(f"{prefix}data/{key}")
      _fill(storage, raw, path, key)
  return obj, unpickler.storages


def _read_legacy(f: BinaryIO, path: str) -> tuple[Any, dict[str, _Storage]]:
  plain = _HeaderUnpickler(f, path)  # The header holds numbers and a dict.
  if plain.load() != MAGIC_NUMBER:
    raise EvalError(f"{path!r} is neither a zip archive nor a legacy torch.save file "
                    "(no torch magic number); expected a state dict saved by torch.save.")
  version = plain.load()
  if version != PROTOCOL_VERSION:
    raise EvalError(f"{path!r}: legacy torch.save protocol {version}; expected "
                    f"{PROTOCOL_VERSION}.")
  plain.load()  # System info: byte order, sizes of C types.
  unpickler = _Unpickler(f, path)
  obj = unpickler.load()
  keys = _HeaderUnpickler(f, path).load()
  for key in keys:
    key = key.decode() if isinstance(key, bytes) else str(key)
    storage = unpickler.storages[key]
    count = int(np.frombuffer(_read_exactly(f, 8, path), "<i8")[0])
    if count != storage.numel:
      raise EvalError(f"{path!r}: storage {key} holds {count} elements where its "
                      f"tensor needs {storage.numel}; the file is damaged.")
    _fill(storage, _read_exactly(f, count * storage.dtype.itemsize, path), path, key)
  return obj, unpickler.storages


class _HeaderUnpickler(pickle.Unpickler):
  """The legacy format's other pickles: numbers, strings, a dict; no globals."""

  def __init__(self, file: BinaryIO, path: str):
    super().__init__(file, encoding="utf-8")
    self.path = path

  def find_class(self, module: str, name: str) -> Any:
    raise EvalError(f"{self.path!r}: unexpected {module}.{name} in a torch.save "
                    "header; expected a file written by torch.save.")


def _read_exactly(f: BinaryIO, n: int, path: str) -> bytes:
  data = f.read(n)
  if len(data) != n:
    raise EvalError(f"{path!r} ends early (truncated download?); expected {n} more "
                    "bytes of tensor data.")
  return data


def _fill(storage: _Storage, raw: bytes, path: str, key: str) -> None:
  if len(raw) != storage.numel * storage.dtype.itemsize:
    raise EvalError(f"{path!r}: storage {key} has {len(raw)} bytes where "
                    f"{storage.numel} elements of {storage.dtype} need "
                    f"{storage.numel * storage.dtype.itemsize}; the file is damaged.")
  storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"))
