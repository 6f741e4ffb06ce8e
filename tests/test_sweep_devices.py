"""A population on 8 fake CPU devices (members over 4 of them, each batch over 2)
trains like the same population on this process's one device.

jax fixes its device count when it starts, so the 8-device run happens in a subprocess
with XLA_FLAGS=--xla_force_host_platform_device_count=8; both go through the training
loop (jaxgan.runtime.loop.run), which lays out the mesh from --mesh_shape. The one-device
run is conftest's `one_device_population`, shared with test_sweep_multihost.py.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest

import toolkit
from test_sweep import assert_trains_alike

SCRIPT = textwrap.dedent("""
  import json, sys
  import jax
  from jaxgan.config import Config
  from jaxgan.runtime import loop
  assert jax.device_count() == 8, jax.devices()
  kwargs = json.loads(sys.argv[1])
  state = loop.run(Config(**{**kwargs, "sweep": tuple(kwargs["sweep"])}), sys.argv[2])
  kernel = jax.tree_util.tree_leaves(state.gan.d.params)[0]
  print("SHARDS " + json.dumps({
      "devices": len({s.device for s in kernel.addressable_shards}),
      "members_per_shard": kernel.addressable_shards[0].data.shape[0]}))
""")


@pytest.mark.xdist_group("devices")
def test_population_on_8_fake_devices_equals_1_device(one_device_population, tmp_path,
                                                      one_device_initial_state):
  config, one_dir, one = one_device_population
  many_dir = str(tmp_path / "many")
  many_config = dataclasses.replace(config, mesh_shape="4,2")
  proc = subprocess.run(
      [sys.executable, "-c", SCRIPT, json.dumps(dataclasses.asdict(many_config)),
       many_dir], cwd=toolkit.REPO,
      env=toolkit.subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=8"),
      capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Members really are spread: each of the 8 devices holds one member's slice.
  [shards] = [json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
              if line.startswith("SHARDS ")]
  assert shards == {"devices": 8, "members_per_shard": 1}
  # The same updates as on one device, each within 5e-3 of its own size (Adam divides by
  # |g| + eps: where an element of g is near eps, the batch split over devices sums it in
  # another order, and its step moves by up to ~0.2 % of the largest update seen).
  assert_trains_alike(toolkit.restore_checkpoint(many_dir, one, 2), one, rtol=5e-3,
                      init=one_device_initial_state)
  many_records = toolkit.read_metrics(many_dir)
  one_records = toolkit.read_metrics(one_dir)
  assert [(r["step"], r["member"]) for r in many_records] == [
      (s, m) for s in (1, 2) for m in range(4)]
  for a, b in zip(many_records, one_records):
    assert a.keys() == b.keys()
    assert a == pytest.approx(b, rel=1e-5)
