"""TensorBoard event files written by jaxgan.tb_events, read back by TensorFlow's parser."""

import glob
import os
import subprocess
import sys

import pytest

from jaxgan import tb_events, writers


def _read_events(workdir):
  tf = pytest.importorskip("tensorflow")
  events = []
  for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
    # TFRecordDataset checks both CRCs of every record.
    for raw in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event()
      event.ParseFromString(raw.numpy())
      events.append(event)
  return events


def test_crc32c_known_value():
  assert tb_events.crc32c(b"123456789") == 0xE3069283  # The CRC-32C check value.
  assert tb_events.crc32c(b"") == 0


def test_scalars_read_back_by_tensorflow(tmp_path):
  w = writers.MetricsWriter(str(tmp_path), resume_step=0)
  w.write(1, {"d_loss": 0.5, "g_loss": 1.25})
  w.write(2, {"d_loss": -3.0}, tags={"member": 3})
  w.close()
  events = _read_events(str(tmp_path))
  assert events[0].file_version == "brain.Event:2"
  assert events[1].session_log.status == events[1].session_log.START
  assert events[1].step == 1
  scalars = [(e.step, v.tag, v.simple_value) for e in events for v in e.summary.value]
  assert scalars == [(1, "d_loss", 0.5), (1, "g_loss", 1.25), (2, "member_3/d_loss", -3.0)]
  assert all(e.wall_time > 1e9 for e in events)


def test_large_and_negative_steps_round_trip(tmp_path):
  w = tb_events.EventFileWriter(str(tmp_path))
  w.add_scalars(2**40 + 7, {"x": 1.0})
  w.add_scalars(-5, {"y": 2.0})
  w.close()
  steps = [e.step for e in _read_events(str(tmp_path)) if e.summary.value]
  assert steps == [2**40 + 7, -5]


def test_two_writers_in_one_second_use_two_files(tmp_path):
  a = tb_events.EventFileWriter(str(tmp_path))
  b = tb_events.EventFileWriter(str(tmp_path))
  assert a.path != b.path
  a.close(), b.close()


def test_writers_import_neither_tensorboardx_nor_torch():
  code = ("import sys, jaxgan.writers; "
          "print(sorted(m for m in ('torch', 'tensorboardX', 'tensorflow') if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
  assert out.stdout.strip() == "[]"
