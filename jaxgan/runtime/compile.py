"""How programs are compiled: options per kind of program, and host memory after it.

* The train step: `StepFunctions` (jit with the state donated, one or two lengths),
  compiled with `step_compiler_options()` (XLA:CPU region-based copy insertion).
* One-shot programs (the initial state, sample noise): `compile_once`, at LLVM -O0 on CPU.
* After each compilation, `release_freed_memory()`: glibc's malloc_trim.

Host memory: hand back to the OS what XLA's compiler freed.

Compiling the mlp's train step on CPU allocates ~230 MB of small blocks (LLVM, MLIR) and
frees them at the end; glibc keeps the freed pages in its heaps, so the RSS stays at its
compile-time peak and the next compilation (the finite check, the sampler, the eval
metrics) stacks its own peak on top. `malloc_trim(0)` returns the free pages (what it
saves: docs/performance.md, "Peak RSS").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any, Callable

import jax

from jaxgan.steps import repeat_step


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


# A program that runs once per process (the initial state) needs no optimised code: on
# CPU, LLVM at -O0 with XLA's elemental emitters compiles it several times faster (its
# threefry calls become many small kernels; docs/performance.md, "Start-up"). The values
# agree with the optimised build to ~1 ulp, and every process compiles the init the same
# way.
_ONE_SHOT_CPU_OPTIONS = {"xla_backend_optimization_level": 0,
                         "xla_cpu_use_fusion_emitters": False}


def one_shot_compiler_options() -> dict[str, Any]:
  """XLA options for a program whose speed does not matter (runs once, or is tiny)."""
  return dict(_ONE_SHOT_CPU_OPTIONS) if jax.default_backend() == "cpu" else {}


# The train step on CPU: XLA's region-based copy insertion proves that the donated
# parameters are read before the optimizer overwrites them in place, so the step loses
# its copies of the donated parameters (docs/performance.md, "Throughput"); the results
# are bit-identical.
_STEP_CPU_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def step_compiler_options() -> dict[str, Any]:
  """XLA options for the train step (jax.jit(..., compiler_options=...))."""
  return dict(_STEP_CPU_OPTIONS) if jax.default_backend() == "cpu" else {}


def compile_once(fn: Callable, *args: Any, **jit_kwargs: Any) -> Callable:
  """jax.jit(fn, **jit_kwargs) compiled for `args` with options for a program that runs
  once (cheap compilation, unoptimised code) on CPU; as plain jit elsewhere."""
  return compile_lowered_once(jax.jit(fn, **jit_kwargs).lower(*args))


def compile_lowered_once(lowered: Any) -> Callable:
  """compile_once for an already lowered program (jax.stages.Lowered)."""
  compiled = lowered.compile(one_shot_compiler_options())
  release_freed_memory()
  return compiled


def initial_state(gan: Any, key: jax.Array) -> Any:
  """gan.init(key), compiled as a one-shot program (eager init compiles op by op and is
  ~5x slower still)."""
  return compile_once(gan.init, key)(key)


class StepFunctions:
  """The jitted train step the loop runs, in one or two lengths.

  With steps_per_call = n > 1, runs of n steps go through one `lax.scan` dispatch and
  the steps left before a log/sample/checkpoint event go one at a time, so every event
  still sees its exact step. The scan body is the same train_step, so the parameters
  are bit-identical to n single steps (tested). Each length is
  compiled the first time it is needed, with the state donated; after that compilation
  the heap pages the compiler freed go back to the OS (release_freed_memory).
  """

  def __init__(self, train_step: Callable, steps_per_call: int, **jit_kwargs: Any):
    """train_step(state, images, labels) -> (state, metrics): a single run's step or a
    population's vmapped one; jit_kwargs: e.g. in_shardings/out_shardings of a mesh."""
    self.steps_per_call = steps_per_call
    options = step_compiler_options()
    self.single = jax.jit(train_step, donate_argnums=0, compiler_options=options,
                          **jit_kwargs)
    self.multi = (jax.jit(repeat_step(train_step, steps_per_call), donate_argnums=0,
                          compiler_options=options, **jit_kwargs)
                  if steps_per_call > 1 else None)
    self._compiled: dict[str, Any] = {}
    self._called: set[str] = set()

  def compile(self, state: Any, images: Any, labels: Any = None,
              multi: bool = True) -> None:
    """Compiles the length the loop runs most now, from shapes (jax.ShapeDtypeStruct
    trees, or arrays): the loop compiles before it allocates the rest of its memory, so
    the compiler's peak is not stacked on top of it. That length is multi when there is
    one and `multi` (False: the run never has steps_per_call steps between two events,
    see `uses_multi`), else single; the other compiles when first needed."""
    name, fn = (("multi", self.multi) if self.multi is not None and multi
                else ("single", self.single))
    self._compiled[name] = fn.lower(state, images, labels).compile()
    release_freed_memory()

  def uses_multi(self, periods: tuple[int, ...], total: int) -> bool:
    """Whether a run of `total` steps from step 0 whose events fire every `periods`
    (0 = never) ever has steps_per_call steps between two events: the first gap is the
    shortest period (or the run), and no gap is longer."""
    gap = min([total] + [p for p in periods if p > 0])
    return self.multi is not None and gap >= self.steps_per_call

  def executable(self, name: str = "single") -> Any:
    """The program compile() made ("single", or "multi" with steps_per_call > 1)."""
    return self._compiled[name]

  def _call(self, name: str, fn, *args):
    if name in self._compiled:
      return self._compiled[name](*args)
    out = fn(*args)  # Compiles on its first call, then dispatches asynchronously.
    if name not in self._called:
      self._called.add(name)
      release_freed_memory()
    return out

  def advance(self, state: Any, images: jax.Array, labels: jax.Array | None,
              step: int, until: int):
    """Runs one dispatch from `step` towards `until`; returns (state, metrics, step)."""
    if self.multi is not None and until - step >= self.steps_per_call:
      state, metrics = self._call("multi", self.multi, state, images, labels)
      return state, metrics, step + self.steps_per_call
    state, metrics = self._call("single", self.single, state, images, labels)
    return state, metrics, step + 1
