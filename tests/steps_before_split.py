"""The step factory as it was before it was split into parts (jaxgan/steps.py at commit
decb73f, verbatim below this docstring).

Kept only as the reference of tests/test_steps_parts.py: the parts of jaxgan.steps must
compute bit for bit what this one closure computed, for every update order and variant.
A deliberate change of a variant's numbers (a fix of an objective, say) updates or drops
that variant's row in the test, with the reason in its commit; this file is never
imported by jaxgan.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxgan import data, losses
from jaxgan import rng as rng_lib
from jaxgan.config import Config
from jaxgan.state import GAN, GANState, NetState

Array = jax.Array
Metrics = dict[str, Array]


class Steps(NamedTuple):
  d_step: Callable[..., tuple[GANState, Metrics]]
  g_step: Callable[..., tuple[GANState, Metrics, Array]]
  train_step: Callable[[GANState, Array], tuple[GANState, Metrics]]
  sample: Callable[[GANState, Array], Array]
  batch_step: Callable[..., tuple[GANState, Metrics]] | None = None
  # train_step with the divergence guard (Gate): (state, images, labels, healthy) ->
  # (state, metrics, nonfinite mask); updates that would be non-finite are discarded.
  guarded_train_step: Callable[..., tuple[GANState, Metrics, Array]] | None = None


def data_key(state: GANState) -> Array:
  """The batch-order key of the state's run (jaxgan.rng.DATA)."""
  return rng_lib.data_key(state.rng)


def step_key(state: GANState) -> Array:
  """The key of the state's current step (jaxgan.rng.STEP)."""
  return rng_lib.step_key(state.rng, state.step)


class DOut(NamedTuple):
  """One D pass: logits [B], feature layer [B, F] (None unless feature matching reads
  it), D's BatchNorm stats after the pass."""

  logits: Array
  features: Array | None
  batch_stats: object


def _find_features(intermediates) -> Array:
  """The one array sown as 'features' anywhere in D's intermediates (wrappers nest it)."""
  found = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(intermediates)
           if any(getattr(k, "key", None) == "features" for k in path)]
  if len(found) != 1:
    raise ValueError(
        f"feature matching needs D's feature layer, but D sowed {len(found)} arrays "
        "named 'features' (expected exactly one): in D's __call__, record the [B, F] "
        "input of its last layer with `self.sow('intermediates', 'features', h)` "
        "(jaxgan.models.sow_features(self, h) does that).")
  return found[0]


def loss_hparams(config: Config) -> losses.LossHParams:
  """The loss hyperparameters of a run. Plain floats from the Config; a sweep may pass
  the same fields as (vmapped) arrays instead."""
  return losses.LossHParams(label_smoothing=config.label_smoothing,
                            gp_weight=config.gp_weight, clip_value=config.clip_value)


def ema_decay_at(decay: float, step: Array) -> Array:
  """The EMA decay used after update `step` (0-based): min(decay, (1 + t)/(10 + t)).

  The warm-up is tf.train.ExponentialMovingAverage's num_updates rule: early averages
  are not dominated by G's random initialisation.
  """
  t = step.astype(jnp.float32)
  return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def ema_update(ema, new, decay: Array):
  """ema ← decay·ema + (1 − decay)·new, leaf by leaf (params and BatchNorm stats)."""
  return jax.tree_util.tree_map(lambda e, n: decay * e + (1.0 - decay) * n, ema, new)


# The checks of a guarded update, in bit order of Gate.nonfinite (one set per network).
GUARD_CHECKS = tuple(f"{net} {what}" for net in ("D", "G")
                     for what in ("loss", "gradients", "BatchNorm statistics"))


def _all_finite(tree) -> Array:
  leaves = [x for x in jax.tree_util.tree_leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else (
      jnp.bool_(True))


class Gate:
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
  loss does. A Gate lives for one trace of one step.
  """

  def __init__(self, open_: Array):
    self.open = jnp.asarray(open_, jnp.bool_)
    self.nonfinite = jnp.int32(0)

  def check(self, name: str, ok: Array) -> None:
    bit = 1 << GUARD_CHECKS.index(name)
    self.nonfinite = self.nonfinite | jnp.where(self.open & ~ok, bit, 0).astype(jnp.int32)
    self.open = self.open & ok


def describe_nonfinite(mask: int) -> list[str]:
  """The names of the checks set in a Gate.nonfinite mask."""
  return [name for bit, name in enumerate(GUARD_CHECKS) if mask >> bit & 1]


def _apply_updates(net: NetState, grads, tx: optax.GradientTransformation,
                   batch_stats, gate: Gate | None = None, who: str = "",
                   loss: Array | None = None) -> NetState:
  updates, opt_state = tx.update(grads, net.opt_state, net.params)
  if gate is None:
    return net.replace(params=optax.apply_updates(net.params, updates),
                       opt_state=opt_state, batch_stats=batch_stats)
  gate.check(f"{who} loss", jnp.isfinite(loss))
  squares = sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grads))
  gate.check(f"{who} gradients", jnp.isfinite(squares))
  gate.check(f"{who} BatchNorm statistics", _all_finite(batch_stats))
  keep = lambda new, old: jnp.where(gate.open, new, old)  # noqa: E731
  return net.replace(
      params=jax.tree_util.tree_map(lambda p, u: p + jnp.where(gate.open, u, 0.0),
                                    net.params, updates),
      opt_state=jax.tree_util.tree_map(keep, opt_state, net.opt_state),
      batch_stats=jax.tree_util.tree_map(keep, batch_stats, net.batch_stats))


def make_steps(config: Config, gan: GAN, num_examples: int,
               constrain_batch: Callable[[Array], Array] | None = None) -> Steps:
  """Builds the pure step functions of the module docstring.

  Args:
    config: the fields read are batch_size, num_d_steps (k), update_order,
      feature_matching, label_smoothing, gp_weight, clip_value and g_ema_decay (a
      `Config(batch_size=..., ...)` built in Python is enough; it is not validated here).
    gan: the static GAN (state.make_gan or state.gan_from_modules).
    num_examples: N of the dataset train_step indexes (batch order: data.batch_indices).
    constrain_batch: optional, applied to each real batch [B, ...] (a population uses it
      to spread the batch over a device mesh's 'data' axis).
  Returns:
    Steps(d_step, g_step, train_step, sample, batch_step, guarded_train_step).
  """
  k = config.num_d_steps
  batch_size = config.batch_size
  pack = getattr(config, "pack", 1)
  unroll = getattr(config, "unroll_steps", 0)
  schedule = getattr(config, "d_steps_schedule", "")
  loss = gan.loss
  hp = loss_hparams(config)
  if pack > 1 and gan.num_classes:
    raise ValueError("packing (pack > 1) does not combine with a conditional GAN")
  if schedule and config.update_order != "d_then_g":
    raise ValueError(f"d_steps_schedule={schedule!r} needs update_order='d_then_g'")

  # Class labels reach G and D only when conditional (resolved here, not traced).
  if gan.num_classes:
    def with_labels(labels):
      return {"labels": labels}

    def labels_of(labels_array, idx):
      return jnp.take(labels_array, idx, axis=0)
  else:
    def with_labels(labels):
      return {}

    def labels_of(labels_array, idx):
      return None

  def generate(g: NetState, z: Array, train: bool, labels=None):
    """G(z) -> (images, new batch_stats); train mode uses and updates batch statistics."""
    variables = {"params": g.params, "batch_stats": g.batch_stats}
    if not train:
      return (gan.generator.apply(variables, z, train=False, **with_labels(labels)),
              g.batch_stats)
    images, mutated = gan.generator.apply(variables, z, train=True,
                                          mutable=["batch_stats"], **with_labels(labels))
    return images, mutated.get("batch_stats", g.batch_stats)

  def generate_for_d(g: NetState, key: Array, labels=None, count: int = batch_size):
    """D's fake input, G in train mode: `count` images, or with packing (PacGAN) m
    passes of `count` images each (G's BatchNorm normalises each pass on its own, as
    the authors' code generates each of the m packed samples separately), concatenated
    channel-wise. Returns (images, G's new batch_stats)."""
    z = gan.sample_noise(key, count * pack)
    if pack == 1:
      return generate(g, z, True, labels)
    parts = []
    for i in range(pack):
      images, batch_stats = generate(g, z[i * count:(i + 1) * count], True)
      g = g.replace(batch_stats=batch_stats)
      parts.append(images)
    return jnp.concatenate(parts, axis=-1), g.batch_stats

  # D's feature layer is read only for feature matching: any other D need not sow it.
  collections = ["batch_stats", "intermediates"] if config.feature_matching else [
      "batch_stats"]

  def discriminate(d_params, batch_stats, x: Array, rng: Array, labels=None) -> DOut:
    """D(x) in train mode (dropout on; BatchNorm on x's own batch statistics)."""
    variables = {"params": d_params, "batch_stats": batch_stats}
    logits, mutated = gan.discriminator.apply(
        variables, x, train=True, rngs={"dropout": rng}, mutable=collections,
        **with_labels(labels))
    features = (_find_features(mutated.get("intermediates", {}))
                if config.feature_matching else None)
    return DOut(logits, features, mutated.get("batch_stats", batch_stats))

  # ---- resolved before tracing: D's penalty, D's constraint, G's objective.
  if loss.d_penalty is not None:
    def d_penalty(d_params, batch_stats, real, fake, key, labels):
      drop_key, eps_key = jax.random.split(key)
      penalty = loss.d_penalty(
          lambda x: discriminate(d_params, batch_stats, x, drop_key, labels).logits,
          real, fake, eps_key)
      return hp.gp_weight * penalty, {"gp": penalty}
  else:
    def d_penalty(d_params, batch_stats, real, fake, key, labels):
      return 0.0, {}

  if loss.clip_d:
    # WGAN's critic is clipped to [-c, c] *before* each of its updates, as the
    # authors' code does (clamp_ at the top of each critic iteration): the G step then
    # sees the critic after its last update.
    def d_constraint(params):
      return losses.clip_weights(params, hp.clip_value)
  else:
    def d_constraint(params):
      return params

  if config.feature_matching:
    def g_objective(fake_out: DOut, real_features: Array) -> Array:
      return losses.feature_matching_loss(real_features, fake_out.features)

    def real_features(d: NetState, real: Array, key: Array, labels) -> Array:
      return jax.lax.stop_gradient(
          discriminate(d.params, d.batch_stats, real, key, labels).features)
  else:
    def g_objective(fake_out: DOut, real_features) -> Array:
      return loss.g_loss(fake_out.logits)

    def real_features(d: NetState, real, key, labels):
      return None

  def d_loss_and_aux(d_params, d: NetState, real, fake, key, labels):
    real_key, fake_key, penalty_key = jax.random.split(key, 3)
    real_out = discriminate(d_params, d.batch_stats, real, real_key, labels)
    fake_out = discriminate(d_params, real_out.batch_stats, fake, fake_key, labels)
    penalty, penalty_metrics = d_penalty(d_params, d.batch_stats, real, fake,
                                         penalty_key, labels)
    d_loss = loss.d_loss(real_out.logits, fake_out.logits, hp) + penalty
    metrics = {"d_loss": d_loss,
               "d_real": jnp.mean(loss.d_output(real_out.logits)),
               "d_fake": jnp.mean(loss.d_output(fake_out.logits)), **penalty_metrics}
    return d_loss, (metrics, real_out, fake_out)

  if unroll:
    # Unrolled GAN (Metz et al. 2017, as the authors' demo code): G's loss is taken
    # against D after `unroll` more of D's own optimizer steps on the same real and fake
    # batch, differentiated through those steps (the fakes are not stopped, so the
    # gradient reaches G through every unrolled update). D itself still takes only its
    # ordinary update.
    def d_for_g(d: NetState, real: Array, fake: Array, key: Array, labels):
      if real is None:
        raise ValueError("an unrolled G step needs the step's real batch (g_step's "
                         "`real`)")

      def update(carry, j):
        params, opt_state = carry
        params = d_constraint(params)
        grads, _ = jax.grad(d_loss_and_aux, has_aux=True)(
            params, d, real, fake, jax.random.fold_in(key, j), labels)
        updates, opt_state = gan.d_tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

      (params, _), _ = jax.lax.scan(update, (d.params, d.opt_state),
                                    jnp.arange(unroll))
      return params
  else:
    def d_for_g(d: NetState, real, fake, key, labels):
      return d.params

  def apply_d(state: GANState, grads, batch_stats, gate: Gate | None = None,
              loss: Array | None = None) -> GANState:
    return state.replace(d=_apply_updates(state.d, grads, gan.d_tx, batch_stats, gate,
                                          "D", loss))

  def d_step(state: GANState, real: Array, rng: Array, fake: Array | None = None,
             labels: Array | None = None, gate: Gate | None = None):
    z_key, d_key = jax.random.split(rng)
    state = state.replace(d=state.d.replace(params=d_constraint(state.d.params)))
    if fake is None:
      fake, _ = generate_for_d(state.g, z_key, labels, real.shape[0])
    fake = jax.lax.stop_gradient(fake)
    grads, (metrics, _, fake_out) = jax.grad(d_loss_and_aux, has_aux=True)(
        state.d.params, state.d, real, fake, d_key, labels)
    return apply_d(state, grads, fake_out.batch_stats, gate, metrics["d_loss"]), metrics

  def g_step(state: GANState, rng: Array, real: Array | None = None,
             labels: Array | None = None, gate: Gate | None = None):
    z_key, drop_key, feat_key = jax.random.split(rng, 3)
    target = real_features(state.d, real, feat_key, labels)
    unroll_key = jax.random.fold_in(drop_key, 1)

    def objective(g_params):
      fake, batch_stats = generate_for_d(state.g.replace(params=g_params), z_key,
                                         labels)
      d_params = d_for_g(state.d, real, fake, unroll_key, labels)
      fake_out = discriminate(d_params, state.d.batch_stats, fake, drop_key, labels)
      return g_objective(fake_out, target), (fake, batch_stats)

    (g_loss, (fake, batch_stats)), grads = jax.value_and_grad(
        objective, has_aux=True)(state.g.params)
    g = _apply_updates(state.g, grads, gan.g_tx, batch_stats, gate, "G", g_loss)
    return state.replace(g=g), {"g_loss": g_loss}, fake

  def pack_batch(batch: Array) -> Array:
    """[m*B, H, W, C] -> [B, H, W, m*C]: sample i of packed example b is batch[i*B + b]."""
    if pack == 1:
      return batch
    return jnp.concatenate(jnp.split(batch, pack, axis=0), axis=-1)

  if schedule == "wgan":
    # The WGAN authors' critic schedule: 100 critic updates for each of the first 25
    # generator updates and every 500th one, --num_d_steps (their Diters) otherwise.
    def d_updates_at(step: Array) -> Array:
      return jnp.where((step < 25) | (step % 500 == 0), 100, k)

    def first_d_batch(step: Array) -> Array:
      """The number of D updates before `step` (their batches come first)."""
      boosted = jnp.minimum(step, 25) + jnp.maximum(step - 1, 0) // 500
      return boosted * 100 + (step - boosted) * k
  else:
    def d_updates_at(step: Array) -> int:
      return k

    def first_d_batch(step: Array) -> Array:
      return step * k

  def real_batch(state: GANState, images: Array, i, labels_array):
    """(batch [B, ...] in pixel_range (packed: [B, ..., m*C]), its labels [B] or None
    when unconditional) of D update i of the state's step."""
    idx = data.batch_indices(data_key(state), first_d_batch(state.step) + i,
                             num_examples, batch_size * pack)
    batch = pack_batch(data.gather_batch(images, idx, gan.pixel_range))
    if constrain_batch is not None:
      batch = constrain_batch(batch)
    return batch, labels_of(labels_array, idx)

  # An update order takes `batches(i) -> (real [B, ...] in pixel_range, labels or None)`,
  # the real batch of D update i of this step: gathered from the dataset on the device
  # (train_step) or given by the caller (batch_step).
  def d_then_g(state: GANState, batches, gate: Gate | None):
    key = step_key(state)
    if schedule:  # A number of D updates that depends on the step: a loop.
      n = d_updates_at(state.step)
      real, labels = batches(0)
      state, d_metrics = d_step(state, real, jax.random.fold_in(key, 0), labels=labels,
                                gate=gate)

      def body(i, carry):
        state, _, open_, nonfinite = carry
        inner = None if gate is None else Gate(open_)
        if inner is not None:
          inner.nonfinite = nonfinite
        real, labels = batches(i)
        state, metrics = d_step(state, real, jax.random.fold_in(key, i), labels=labels,
                                gate=inner)
        return (state, metrics, open_ if inner is None else inner.open,
                nonfinite if inner is None else inner.nonfinite)

      open_ = jnp.bool_(True) if gate is None else gate.open
      nonfinite = jnp.int32(0) if gate is None else gate.nonfinite
      state, d_metrics, open_, nonfinite = jax.lax.fori_loop(
          1, n, body, (state, d_metrics, open_, nonfinite))
      if gate is not None:
        gate.open, gate.nonfinite = open_, nonfinite
      real, labels = batches(n - 1)
    else:
      for i in range(k):
        real, labels = batches(i)
        state, d_metrics = d_step(state, real, jax.random.fold_in(key, i),
                                  labels=labels, gate=gate)
    # Feature matching compares with the last real batch D saw (unused otherwise); a
    # conditional G makes fakes for that batch's labels.
    state, g_metrics, _ = g_step(state, jax.random.fold_in(key, k), real, labels, gate)
    return state, {**d_metrics, **g_metrics}

  def g_then_d(state: GANState, batches, gate: Gate | None):
    # PyTorch-GAN's order: G first; D then trains on the fakes G made before its update.
    key = step_key(state)
    real, labels = batches(0)
    state, g_metrics, fake = g_step(state, jax.random.fold_in(key, k), real, labels, gate)
    for i in range(k):
      real, labels = batches(i)
      state, d_metrics = d_step(state, real, jax.random.fold_in(key, i),
                                fake if i == 0 else None, labels=labels, gate=gate)
    return state, {**d_metrics, **g_metrics}

  def simultaneous(state: GANState, batches, gate: Gate | None):
    # The paper's code (AdversaryCost2): both gradients from the same minibatch and the
    # same fakes, then both applied. stop_gradient routes each loss to its own player.
    key = step_key(state)
    z_key, d_key = jax.random.split(jax.random.fold_in(key, 0))
    real, labels = batches(0)
    fake_key = jax.random.split(d_key, 3)[1]  # d_loss_and_aux's key for the fake pass.
    state = state.replace(d=state.d.replace(params=d_constraint(state.d.params)))

    def objective(g_params, d_params):
      fake, g_batch_stats = generate_for_d(state.g.replace(params=g_params), z_key,
                                           labels)
      d_loss, (d_metrics, real_out, fake_out) = d_loss_and_aux(
          d_params, state.d, real, jax.lax.stop_gradient(fake), d_key, labels)
      # Same dropout key and statistics: G's loss sees the same D(G(z)) as D's loss
      # (unrolled: D after its extra steps).
      frozen = state.d.replace(params=jax.lax.stop_gradient(d_params))
      g_fake_out = discriminate(d_for_g(frozen, real, fake, jax.random.fold_in(
          fake_key, 1), labels), state.d.batch_stats, fake, fake_key, labels)
      g_loss = g_objective(g_fake_out, jax.lax.stop_gradient(real_out.features))
      return d_loss + g_loss, (d_metrics, g_loss, fake_out.batch_stats, g_batch_stats)

    (_, (d_metrics, g_loss, d_batch_stats, g_batch_stats)), (g_grads, d_grads) = (
        jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(
            state.g.params, state.d.params))
    if gate is not None:  # One joint update: both players' checks come first.
      g_gate, d_gate = Gate(gate.open), Gate(gate.open)
      _apply_updates(state.g, g_grads, gan.g_tx, g_batch_stats, g_gate, "G", g_loss)
      apply_d(state, d_grads, d_batch_stats, d_gate, d_metrics["d_loss"])
      gate.nonfinite = g_gate.nonfinite | d_gate.nonfinite
      gate.open = g_gate.open & d_gate.open
    g = _apply_updates(state.g, g_grads, gan.g_tx, g_batch_stats, gate, "G", g_loss)
    state = apply_d(state.replace(g=g), d_grads, d_batch_stats, gate, d_metrics["d_loss"])
    return state, {**d_metrics, "g_loss": g_loss}

  order = {"d_then_g": d_then_g, "g_then_d": g_then_d,
           "simultaneous": simultaneous}[config.update_order]

  if gan.g_ema:
    def update_ema(state: GANState, gate: Gate | None) -> GANState:
      new = {"params": state.g.params, "batch_stats": state.g.batch_stats}
      decay = ema_decay_at(config.g_ema_decay, state.step)
      if gate is not None:  # A member that diverged keeps its EMA too.
        decay = jnp.where(gate.open, decay, 1.0)
      return state.replace(g_ema=ema_update(state.g_ema, new, decay))

    def sampling_generator(state: GANState) -> NetState:
      return state.g.replace(**state.g_ema)
  else:
    def update_ema(state: GANState, gate: Gate | None) -> GANState:
      return state

    def sampling_generator(state: GANState) -> NetState:
      return state.g

  def dataset_batches(state: GANState, images: Array, labels: Array | None):
    return lambda i: real_batch(state, images, i, labels)

  def caller_batches(real: Array, labels: Array | None):
    """batches(i) over real [k, B*m, H, W, C] (or [B*m, H, W, C] when k == 1; m is the
    packing, 1 without)."""
    if schedule:
      raise ValueError(f"batch_step takes a fixed number of D updates per step; "
                       f"d_steps_schedule={schedule!r} is for train_step")
    if real.ndim == len(gan.image_shape) + 1:
      if k != 1:
        raise ValueError(f"batch_step with num_d_steps={k} takes the k real batches of "
                         f"one step, [{k}, B, H, W, C]; got shape {real.shape}")
      real, labels = real[None], None if labels is None else labels[None]
    if real.ndim != len(gan.image_shape) + 2 or real.shape[0] != k or (
        real.shape[1] != batch_size * pack
        or tuple(real.shape[2:]) != tuple(gan.image_shape)):
      raise ValueError(f"batch_step expects real [{k}, {batch_size * pack}, "
                       f"{', '.join(map(str, gan.image_shape))}] (k = num_d_steps, "
                       f"B{' * pack' if pack > 1 else ''} = {batch_size * pack}), got "
                       f"shape {tuple(real.shape)}")
    if gan.num_classes and labels is None:
      raise ValueError("a conditional GAN's batch_step needs the real batches' labels")

    def batches(i):
      batch = pack_batch(real[i].astype(jnp.float32))
      if constrain_batch is not None:
        batch = constrain_batch(batch)
      return batch, (labels[i] if gan.num_classes else None)
    return batches

  def train_step(state: GANState, images: Array, labels: Array | None = None):
    state, metrics = order(state, dataset_batches(state, images, labels), None)
    state = update_ema(state, None)
    return state.replace(step=state.step + 1), metrics

  def batch_step(state: GANState, real: Array, labels: Array | None = None):
    state, metrics = order(state, caller_batches(real, labels), None)
    state = update_ema(state, None)
    return state.replace(step=state.step + 1), metrics

  def guarded_train_step(state: GANState, images: Array, labels: Array | None = None,
                         healthy: Array = True):
    gate = Gate(healthy)
    state, metrics = order(state, dataset_batches(state, images, labels), gate)
    state = update_ema(state, gate)
    return state.replace(step=state.step + 1), metrics, gate.nonfinite

  def sample(state: GANState, z: Array, labels: Array | None = None) -> Array:
    """G(z) in eval mode (BatchNorm running averages): [B, H, W, C] in pixel_range.

    With --g_ema_decay > 0 this is the EMA generator (samples and evaluation use it).
    With --conditional, `labels` [B] int32 chooses the classes.
    """
    return generate(sampling_generator(state), z, train=False, labels=labels)[0]

  return Steps(d_step=d_step, g_step=g_step, train_step=train_step, sample=sample,
               batch_step=batch_step, guarded_train_step=guarded_train_step)


def repeat_step(train_step: Callable[..., tuple[GANState, Metrics]],
                num_steps: int) -> Callable[..., tuple[GANState, Metrics]]:
  """`num_steps` train steps in one traced function (lax.scan): one dispatch instead
  of many. Same signature as train_step; returns the final state and the metrics of
  the last step."""
  if num_steps == 1:
    return train_step

  def many(state: GANState, images: Array, labels: Array | None = None):
    def body(state, _):
      return train_step(state, images, labels)
    state, metrics = jax.lax.scan(body, state, None, length=num_steps)
    return state, jax.tree_util.tree_map(lambda m: m[-1], metrics)

  return many
