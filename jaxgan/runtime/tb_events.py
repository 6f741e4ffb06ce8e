"""TensorBoard event files for scalars, written with the standard library only.

tensorboardX did this before, but importing it pulls in whatever it finds installed
(torch, boto3, google-cloud-storage, comet_ml): seconds of start-up and hundreds of MB of
peak RSS on a machine with torch (docs/performance.md, "Start-up"). Scalars need only a
few protobuf fields, encoded here by hand:

  file  = record*            record = len:u64 · mcrc(len):u32 · data · mcrc(data):u32
  Event = wall_time(1, double) · step(2, int64) · one of: file_version(3, string)
          | summary(5, Summary) | session_log(7, SessionLog)   (a oneof)
  Summary = value(1, Value)*   Value = tag(1, string) · simple_value(2, float)
  SessionLog = status(1, enum; START = 1)

mcrc is TFRecord's masked CRC-32C. The format is TensorFlow's `event.proto` /
`summary.proto`; the tests read the files back with TensorFlow's own parser.
"""

from __future__ import annotations

import os
import socket
import struct
import time


def _crc32c_table() -> list[int]:
  table = []
  for i in range(256):
    crc = i
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    table.append(crc)
  return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), as TFRecord uses."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  crc = crc32c(data)
  return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
  value &= (1 << 64) - 1  # int64 on the wire: negative numbers as two's complement.
  out = bytearray()
  while True:
    byte = value & 0x7F
    value >>= 7
    if value:
      out.append(byte | 0x80)
    else:
      out.append(byte)
      return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
  """A length-delimited field (wire type 2)."""
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_event(step: int, wall_time: float, *, file_version: str | None = None,
                 scalars: dict[str, float] | None = None,
                 session_start: bool = False) -> bytes:
  """One serialized tensorflow.Event; set one of file_version, scalars, session_start
  (they are a oneof in event.proto)."""
  if (file_version is not None) + bool(scalars) + session_start != 1:
    raise ValueError("an Event holds exactly one of file_version, scalars, session_start")
  out = bytearray(b"\x09" + struct.pack("<d", wall_time))  # 1: wall_time, fixed64.
  out += b"\x10" + _varint(int(step))                       # 2: step, varint.
  if file_version is not None:
    out += _field(3, file_version.encode())
  if scalars:
    values = b"".join(
        _field(1, _field(1, tag.encode()) + b"\x15" + struct.pack("<f", float(value)))
        for tag, value in scalars.items())                  # Value 2: float, fixed32.
    out += _field(5, values)
  if session_start:
    out += _field(7, b"\x08\x01")                            # SessionLog.status = START.
  return bytes(out)


def encode_record(data: bytes) -> bytes:
  header = struct.pack("<Q", len(data))
  return (header + struct.pack("<I", masked_crc32c(header)) + data
          + struct.pack("<I", masked_crc32c(data)))


class EventFileWriter:
  """Appends scalar events to a new `events.out.tfevents.*` file in `logdir`.

  purge_step: as tensorboardX's: TensorBoard hides events of this step and later that
  were written before (by a run that died after its last checkpoint), via a
  SessionLog.START event at that step.
  """

  def __init__(self, logdir: str, purge_step: int | None = None):
    os.makedirs(logdir, exist_ok=True)
    base = os.path.join(logdir, f"events.out.tfevents.{int(time.time()):010d}."
                        f"{socket.gethostname()}.{os.getpid()}")
    path, n = base, 0
    while os.path.exists(path):  # Two writers in one second of one process.
      n += 1
      path = f"{base}.{n}"
    self.path = path
    self._file = open(path, "ab")
    first = purge_step if purge_step is not None else 0
    self._write(encode_event(first, time.time(), file_version="brain.Event:2"))
    if purge_step is not None:
      self._write(encode_event(purge_step, time.time(), session_start=True))
    self.flush()

  def _write(self, event: bytes) -> None:
    self._file.write(encode_record(event))

  def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
    """One event holding every scalar of `step` (none: nothing is written)."""
    if not scalars:
      return
    self._write(encode_event(step, time.time(), scalars=scalars))

  def flush(self) -> None:
    self._file.flush()

  def close(self) -> None:
    if not self._file.closed:
      self._file.close()
