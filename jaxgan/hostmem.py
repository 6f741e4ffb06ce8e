"""Host memory: hand back to the OS what XLA's compiler freed.

Compiling the mlp's train step on CPU allocates ~230 MB of small blocks (LLVM, MLIR) and
frees them at the end; glibc keeps the freed pages in its heaps, so the RSS stays at its
compile-time peak and the next compilation (the finite check, the sampler, the eval
metrics) stacks its own peak on top. `malloc_trim(0)` returns the free pages: measured
on the mlp, 646 MB -> 442 MB right after the first step (tools: /tmp rss timeline in
WORKSPACE.md, "Performance").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=None)
def _malloc_trim():
  name = ctypes.util.find_library("c")
  try:
    return ctypes.CDLL(name).malloc_trim if name else None
  except (OSError, AttributeError):  # Not glibc (musl, macOS): nothing to trim.
    return None


def release_freed_memory() -> bool:
  """malloc_trim(0) where glibc provides it; True if it returned memory to the OS."""
  trim = _malloc_trim()
  return bool(trim(0)) if trim is not None else False
