"""The objectives, as parts: D's loss plus its terms, D's constraints, G's objective plus
its terms, and the D that G plays against (the current one, or unrolled).

Registries (name -> builder). A builder `builder(settings, gan)` returns the part when it
applies to the run (settings: jaxgan.steps.settings.StepSettings, whose `config` is the
whole Config) and None otherwise; `make_steps` collects what applies and never branches
on a variant:
  * D_TERMS, `@d_term(name, stream)`: a `Term` (or its bare function `ctx -> (scalar,
    metrics)`), added to D's loss (a regularizer: the gradient penalty, R1, ...);
  * D_CONSTRAINTS, `@d_constraint(name)`: `constrain(d_params) -> d_params`, applied
    before each of D's updates (WGAN's clipping);
  * G_TERMS, `@g_term(name, stream)`: a `Term`, added to G's objective;
  * G_OBJECTIVES ('adversarial', 'feature_matching' or 'unrolled_minimax') and
    G_ADVERSARIES ('current' or 'unrolled') are chosen by name from the settings.
A term that draws random numbers gets its own key: fold_in(the objective's term key,
stream); stream 0 takes the term key as it is (the gradient penalty, registered first).

A term's numbers that a sweep may vary are its `hparams` (name -> the run's value): they
live in `GANState.hparams` as array leaves, and the term reads them from `ctx.hparams`,
never from the settings. A term that keeps state between updates (LeCam's anchors)
declares its initial `aux`; it then reads `ctx.aux` and returns its next state third,
`(scalar, metrics, aux)`, which is written to `GANState.aux[name]` with the update, through
the divergence gate. `Steps.init` puts both into the initial state.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxgan import losses
from jaxgan.state import GAN, NetState
from jaxgan.steps.nets import DOut, Nets

Array = jax.Array
Metrics = dict[str, Array]


class DTermContext(NamedTuple):
  """What a D term sees in D's objective. batch_stats: D's statistics before the step's
  passes; real_out/fake_out: D's passes on the real and fake batch (their logits carry
  the gradient to d_params); hparams: the state's run-time hyperparameters; aux: this
  term's state (None for a term that keeps none)."""

  d_params: Any
  batch_stats: Any
  real: Array
  fake: Array
  labels: Array | None
  real_out: DOut
  fake_out: DOut
  key: Array
  nets: Nets
  hp: losses.LossHParams
  hparams: Any = None
  aux: Any = None


class GTermContext(NamedTuple):
  """What a G term sees in G's objective: G's parameters, the fakes D judged (they carry
  the gradient to g_params), D's pass on them, the step's real batch (or None), the
  state's run-time hyperparameters."""

  g_params: Any
  fake: Array
  fake_out: DOut
  real: Array | None
  labels: Array | None
  key: Array
  nets: Nets
  hparams: Any = None
  aux: Any = None


class Term(NamedTuple):
  """A registered objective term.

  apply(ctx) -> (scalar, metrics), or (scalar, metrics, next aux) when it keeps state.
  hparams: {name: the run's value} of the numbers it reads from ctx.hparams (sweepable).
  aux: its initial state (a pytree of arrays), None when it keeps none.
  """

  apply: Callable
  hparams: dict = {}
  aux: Any = None


D_TERMS: dict[str, tuple[int, Callable]] = {}
G_TERMS: dict[str, tuple[int, Callable]] = {}
D_CONSTRAINTS: dict[str, Callable] = {}


def _registrar(registry: dict, name: str, entry_of: Callable):
  def register(builder):
    if name in registry:
      raise ValueError(f"{name!r} is already registered")
    registry[name] = entry_of(builder)
    return builder
  return register


def d_term(name: str, stream: int):
  """Registers `builder(settings, gan) -> Term | function | None` (a decorator)."""
  return _registrar(D_TERMS, name, lambda b: (stream, b))


def g_term(name: str, stream: int):
  """Registers `builder(settings, gan) -> Term | function | None` (a decorator)."""
  return _registrar(G_TERMS, name, lambda b: (stream, b))


def d_constraint(name: str):
  """Registers `builder(settings, gan) -> (d_params -> d_params) | None`."""
  return _registrar(D_CONSTRAINTS, name, lambda b: b)


class ActiveTerm(NamedTuple):
  name: str
  stream: int
  term: Term


def active_terms(registry: dict, settings, gan: GAN) -> list[ActiveTerm]:
  """Every registered term that applies to the run, in registration order."""
  out = []
  for name, (stream, builder) in registry.items():
    term = builder(settings, gan)
    if term is not None:
      out.append(ActiveTerm(name, stream, term if isinstance(term, Term) else Term(term)))
  return out


def initial_extras(terms: list[ActiveTerm]) -> tuple[dict, dict]:
  """(hparams, aux) of the state the terms read: hparams as float32 scalars, each name
  declared once; aux keyed by term name."""
  hparams, aux = {}, {}
  for t in terms:
    for name, value in t.term.hparams.items():
      if name in hparams:
        raise ValueError(f"the hyperparameter {name!r} is declared by two terms")
      hparams[name] = jnp.asarray(value, jnp.float32)
    if t.term.aux is not None:
      aux[t.name] = jax.tree_util.tree_map(jnp.array, t.term.aux)
  return hparams, aux


def check_extras(terms: list[ActiveTerm], hparams, aux) -> None:
  """Refuses a state without the hyperparameters or term state the terms read."""
  want_h = {n for t in terms for n in t.term.hparams}
  want_a = {t.name for t in terms if t.term.aux is not None}
  missing = sorted((want_h - set(hparams)) | (want_a - set(aux)))
  if missing:
    raise ValueError(f"the step's objective terms read {missing} from the state, which "
                     "lacks them: make the state with Steps.init (it adds them to "
                     "GAN.init's)")


def term_key(key: Array, stream: int) -> Array:
  return key if stream == 0 else jax.random.fold_in(key, stream)


def evaluate_terms(terms: list[ActiveTerm], ctx) -> tuple[list[Array], Metrics, dict]:
  """The terms' values at ctx (each with its own key and state), their metrics, and the
  next state of the terms that keep one {name: aux} (no gradient flows into it)."""
  values, metrics, next_aux = [], {}, {}
  for t in terms:
    aux = None if t.term.aux is None else ctx.aux[t.name]
    out = t.term.apply(ctx._replace(key=term_key(ctx.key, t.stream), aux=aux))
    values.append(out[0])
    metrics.update(out[1])
    if t.term.aux is not None:
      next_aux[t.name] = jax.lax.stop_gradient(out[2])
  return values, metrics, next_aux


def plus(value: Array, values: list[Array]) -> Array:
  for v in values:
    value = value + v
  return value


# --------------------------------------------------------------------------- D
@d_term("gradient_penalty", stream=0)
def gradient_penalty(settings, gan: GAN):
  """WGAN-GP (Gulrajani et al. 2017): hp.gp_weight · E(‖∇D(x̂)‖ − 1)², with the loss's
  penalty (losses.gradient_penalty); metric 'gp' (unweighted)."""
  if gan.loss.d_penalty is None:
    return None

  def term(ctx: DTermContext):
    drop_key, eps_key = jax.random.split(ctx.key)
    penalty = gan.loss.d_penalty(
        lambda x: ctx.nets.discriminate(ctx.d_params, ctx.batch_stats, x, drop_key,
                                        ctx.labels).logits, ctx.real, ctx.fake, eps_key)
    return ctx.hp.gp_weight * penalty, {"gp": penalty}
  return term


@d_constraint("clip")
def clip(settings, gan: GAN):
  """WGAN's critic is clipped to [-c, c] *before* each of its updates, as the authors'
  code does (clamp_ at the top of each critic iteration): the G step then sees the
  critic after its last update."""
  if not gan.loss.clip_d:
    return None
  return lambda params: losses.clip_weights(params, settings.hp.clip_value)


def make_d_constraint(settings, gan: GAN) -> Callable:
  active = [c for c in (b(settings, gan) for b in D_CONSTRAINTS.values()) if c is not None]

  def constrain(params):
    for c in active:
      params = c(params)
    return params
  return constrain


def make_d_objective(settings, gan: GAN, nets: Nets, terms: list[ActiveTerm]
                     ) -> Callable:
  """`d_objective(d_params, d, real, fake, key, labels, extras) -> (d_loss, (metrics,
  real_out, fake_out, next_aux))`: the loss's d_loss on D's separate real and fake
  passes, plus the D terms. extras: (the state's hparams, its aux). metrics: d_loss,
  d_real, d_fake (loss.d_output of D's outputs) and the terms'."""

  def d_objective(d_params, d: NetState, real, fake, key, labels, extras=({}, {})):
    real_key, fake_key, terms_key = jax.random.split(key, 3)
    real_out = nets.discriminate(d_params, d.batch_stats, real, real_key, labels)
    fake_out = nets.discriminate(d_params, real_out.batch_stats, fake, fake_key, labels)
    values, term_metrics, next_aux = evaluate_terms(terms, DTermContext(
        d_params, d.batch_stats, real, fake, labels, real_out, fake_out, terms_key, nets,
        settings.hp, *extras))
    d_loss = plus(gan.loss.d_loss(real_out.logits, fake_out.logits, settings.hp), values)
    metrics = {"d_loss": d_loss, "d_real": jnp.mean(gan.loss.d_output(real_out.logits)),
               "d_fake": jnp.mean(gan.loss.d_output(fake_out.logits)), **term_metrics}
    return d_loss, (metrics, real_out, fake_out, next_aux)
  return d_objective


# --------------------------------------------------------------------------- G
class GObjective(NamedTuple):
  """target(nets, d, real, key, labels): what G's loss compares with, from the real
  batch (None when nothing); loss(fake_out, target, judge_real) -> scalar, where
  `judge_real() -> DOut` is D's pass over the step's real batch with the parameters G
  plays against (the unrolled D_K, else the current D), inside G's differentiation; it
  is traced only by an objective that calls it."""

  target: Callable
  loss: Callable


def _no_target(nets, d, real, key, labels):
  return None


def _adversarial(settings, gan: GAN) -> GObjective:
  return GObjective(target=_no_target, loss=lambda fake_out, target, judge_real: (
      gan.loss.g_loss(fake_out.logits)))


def _feature_matching(settings, gan: GAN) -> GObjective:
  """Salimans et al. 2016: G matches D's mean features on the real batch (D fixed)."""
  def target(nets: Nets, d: NetState, real, key, labels):
    return jax.lax.stop_gradient(
        nets.discriminate(d.params, d.batch_stats, real, key, labels).features)
  return GObjective(target=target, loss=lambda fake_out, target, judge_real: (
      losses.feature_matching_loss(target, fake_out.features)))


def _unrolled_minimax(settings, gan: GAN) -> GObjective:
  """Unrolled GAN as Metz et al.'s paper and demo code write it: G minimises the GAN's
  value at the unrolled D, V(D_K, G) = E log D_K(x) + E log(1 − D_K(G(z))) (the demo's
  `g_train_opt.minimize(-unrolled_loss)`, unrolled_loss being D's cross-entropy at
  D_K, not halved). The real term matters: D_K was trained on G's fakes, so E log D_K(x)
  depends on G, and its gradient reaches G through the unrolled updates. D's outputs
  must be logits of D(x) (a cross-entropy loss); label smoothing changes D's own
  target, not this value."""
  if not gan.loss.cross_entropy:
    raise ValueError("the unrolled minimax objective is the value E log D_K(x) + "
                     "E log(1 - D_K(G(z))) of a cross-entropy D; this GAN's loss is not "
                     "one (unroll_objective='g_loss' takes its own G loss instead)")
  if not settings.unroll_steps:
    raise ValueError("unroll_objective='minimax' is G's objective against the unrolled "
                     "D: it needs unroll_steps > 0")

  def value(fake_out, target, judge_real):
    log_d_real = -jax.nn.softplus(-judge_real().logits)
    return jnp.mean(log_d_real) + losses.minimax_g_loss(fake_out.logits)
  return GObjective(target=_no_target, loss=value)


G_OBJECTIVES = {"adversarial": _adversarial, "feature_matching": _feature_matching,
                "unrolled_minimax": _unrolled_minimax}
# What G minimises against the unrolled D (Config.unroll_objective) -> G_OBJECTIVES.
UNROLL_OBJECTIVES = {"g_loss": "adversarial", "minimax": "unrolled_minimax"}


def make_g_loss(settings, gan: GAN, terms: list[ActiveTerm]
                ) -> tuple[GObjective, Callable]:
  """(objective, g_loss): `g_loss(objective_value, ctx) -> (loss, metrics)` adds the
  G terms to the objective's value. (A G term keeps no state: no G term needs one yet.)"""
  stateful = [t.name for t in terms if t.term.aux is not None]
  if stateful:
    raise ValueError(f"G terms {stateful} declare state (aux); only D terms keep state")
  name = UNROLL_OBJECTIVES[settings.config.unroll_objective]
  if settings.feature_matching:
    if name != "adversarial":
      raise ValueError("feature matching replaces G's adversarial objective, so it "
                       "does not combine with unroll_objective="
                       f"{settings.config.unroll_objective!r}")
    name = "feature_matching"
  objective = G_OBJECTIVES[name](settings, gan)

  def g_loss(value: Array, ctx: GTermContext) -> tuple[Array, Metrics]:
    values, metrics, _ = evaluate_terms(terms, ctx)
    return plus(value, values), metrics
  return objective, g_loss


def _current(settings, gan: GAN, d_objective, d_constraint) -> Callable:
  return lambda d, real, fake, key, labels, extras: d.params


def _unrolled(settings, gan: GAN, d_objective, d_constraint) -> Callable:
  """Unrolled GAN (Metz et al. 2017): G's loss is taken against D_K, D after
  `unroll_steps` = K more of D's own optimizer steps on the same real and fake batch,
  differentiated through those steps (the fakes are not stopped, so the gradient reaches
  G through every unrolled update), as the authors' demo code unrolls it. D itself
  still takes only its ordinary update. What G minimises against D_K is the G objective
  (Config.unroll_objective): the authors' value V(D_K, G) (`_unrolled_minimax`), or the
  run's own G loss on D_K(G(z)) alone, the default ('g_loss')."""
  def unrolled_d(d: NetState, real, fake, key, labels, extras):
    if real is None:
      raise ValueError("an unrolled G step needs the step's real batch (g_step's "
                       "`real`)")

    def update(carry, j):
      params, opt_state = carry
      params = d_constraint(params)
      grads, _ = jax.grad(d_objective, has_aux=True)(
          params, d, real, fake, jax.random.fold_in(key, j), labels, extras)
      updates, opt_state = gan.d_tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(update, (d.params, d.opt_state),
                                  jnp.arange(settings.unroll_steps))
    return params
  return unrolled_d


G_ADVERSARIES = {"current": _current, "unrolled": _unrolled}


def make_adversary(settings, gan: GAN, d_objective, d_constraint) -> Callable:
  """`adversary(d, real, fake, key, labels, extras) -> D's params` that G's loss is
  taken on (extras: the state's hparams and aux, which D's own objective reads)."""
  name = "unrolled" if settings.unroll_steps else "current"
  return G_ADVERSARIES[name](settings, gan, d_objective, d_constraint)
