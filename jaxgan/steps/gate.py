"""The finite check of an update, as an immutable pytree returned with each update.

An update is proposed (the optimizer's step from the gradients), checked, then committed
through the gate: `Gate` (a population member's guarded step) discards an update that
fails a check and every later one of the step; `UNGATED` (a single run, whose finite
check runs on the host at events) commits everything and computes no check at all.
Every update order threads the gate it is given through its updates and returns it.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax
import jax
import jax.numpy as jnp
import optax

from jaxgan.state import NetState

Array = jax.Array

# The checks of a guarded update, in bit order of Gate.nonfinite (one set per network).
GUARD_CHECKS = tuple(f"{net} {what}" for net in ("D", "G")
                     for what in ("loss", "gradients", "BatchNorm statistics"))


def describe_nonfinite(mask: int) -> list[str]:
  """The names of the checks set in a Gate.nonfinite mask."""
  return [name for bit, name in enumerate(GUARD_CHECKS) if mask >> bit & 1]


def _all_finite(tree) -> Array:
  leaves = [x for x in jax.tree_util.tree_leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else (
      jnp.bool_(True))


class Gate(flax.struct.PyTreeNode):
  """The divergence guard of one train step (a population member's, jaxgan.sweep).

  `open` (bool scalar): updates may apply. Every guarded update checks its loss, its
  gradients (the sum of their squares, which Adam's and RMSprop's second moments
  accumulate, so a gradient whose square overflows fails too) and its new BatchNorm
  statistics *before* anything is written; a failed check closes the gate, so that update
  and every later one of the step are discarded, and sets its bit (GUARD_CHECKS order) in
  `nonfinite`. The masking is elementwise inside the update (`where(open, new, old)`),
  so XLA keeps the update in place. Checking the finished updates or state instead would
  need their reduction to finish before the select, so the state would be written twice
  (docs/performance.md, "Divergence guard").

  Why finite checked inputs give a finite state: the optimizers' arithmetic maps finite
  state and gradients with finite squares to finite updates bounded by a small multiple
  of the learning rate (Adam: |update| <~ 32 lr; RMSprop: <= 10 lr; SGD with momentum m:
  |g| / (1 - m) lr), and config.MAXIMA bounds the learning rates by 1e10, so a
  parameter cannot overflow float32 in any number of steps a run can take before its
  loss does.
  """

  open: Array
  nonfinite: Array

  @classmethod
  def start(cls, healthy: Array | bool) -> "Gate":
    """The gate at the start of a step: open for a healthy member."""
    return cls(open=jnp.asarray(healthy, jnp.bool_), nonfinite=jnp.int32(0))

  def check(self, name: str, ok: Callable[[], Array]) -> "Gate":
    """This gate after check `name` (GUARD_CHECKS) whose outcome `ok()` computes."""
    ok = ok()
    bit = 1 << GUARD_CHECKS.index(name)
    return Gate(open=self.open & ok,
                nonfinite=self.nonfinite | jnp.where(self.open & ~ok, bit, 0).astype(
                    jnp.int32))

  def both(self, other: "Gate") -> "Gate":
    """The gate of two updates checked from the same start and committed together."""
    return Gate(open=self.open & other.open, nonfinite=self.nonfinite | other.nonfinite)

  def keep(self, new, old):
    """`new` where the gate is open, else `old` (leaf by leaf)."""
    return jax.tree_util.tree_map(lambda n, o: jnp.where(self.open, n, o), new, old)

  def masked(self, updates):
    """The optimizer's updates where the gate is open, else zero."""
    return jax.tree_util.tree_map(lambda u: jnp.where(self.open, u, 0.0), updates)


class Ungated(flax.struct.PyTreeNode):
  """No guard (a single run: its finite check runs on the host at events): every update
  is committed, no check is computed. Same methods as Gate; no leaves."""

  def check(self, name: str, ok: Callable[[], Array]) -> "Ungated":
    return self

  def both(self, other: "Ungated") -> "Ungated":
    return self

  def keep(self, new, old):
    return new

  def masked(self, updates):
    return updates


UNGATED = Ungated()


class Proposal(NamedTuple):
  """An update not yet written: the optimizer's updates and state, D's or G's new
  BatchNorm statistics."""

  updates: Any
  opt_state: Any
  batch_stats: Any


def propose_update(net: NetState, grads, tx: optax.GradientTransformation, batch_stats,
                   gate: Gate | Ungated, who: str, loss: Array
                   ) -> tuple[Proposal, Gate | Ungated]:
  """The update of network `who` ('D' or 'G') from `grads`, and the gate after its
  checks (loss, gradients, new BatchNorm statistics)."""
  updates, opt_state = tx.update(grads, net.opt_state, net.params)
  gate = gate.check(f"{who} loss", lambda: jnp.isfinite(loss))
  gate = gate.check(f"{who} gradients", lambda: jnp.isfinite(
      sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grads))))
  gate = gate.check(f"{who} BatchNorm statistics", lambda: _all_finite(batch_stats))
  return Proposal(updates, opt_state, batch_stats), gate


def commit(net: NetState, proposal: Proposal, gate: Gate | Ungated) -> NetState:
  """`net` after `proposal`, through `gate` (unchanged where it is closed)."""
  return net.replace(params=optax.apply_updates(net.params, gate.masked(proposal.updates)),
                     opt_state=gate.keep(proposal.opt_state, net.opt_state),
                     batch_stats=gate.keep(proposal.batch_stats, net.batch_stats))


def apply_update(net: NetState, grads, tx: optax.GradientTransformation, batch_stats,
                 gate: Gate | Ungated, who: str, loss: Array
                 ) -> tuple[NetState, Gate | Ungated]:
  """propose_update, then commit: one network's update through the gate."""
  proposal, gate = propose_update(net, grads, tx, batch_stats, gate, who, loss)
  return commit(net, proposal, gate), gate
