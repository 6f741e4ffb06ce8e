"""The step factory as parts (jaxgan/steps/): the same numbers as the one closure it
replaced, for every update order and variant, and new objective terms and augmentations
plugged in without touching the factory.

Bit identity: one fixed seed, 20 steps of the whole train step (lax.scan, one program),
the parts against the frozen pre-split factory (tests/steps_before_split.py), states and
last metrics compared bit for bit. Same HLO compiles to a cache hit, so each row costs
about one compilation."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import steps as steps_lib
from jaxgan.config import Config
from jaxgan.runtime.compile import compile_once
from jaxgan.state import make_gan
from jaxgan.steps import make_steps, repeat_step

import steps_before_split
import toolkit

NUM_STEPS = 20
IMAGES = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 1), dtype=np.uint8)
POINTS = np.random.default_rng(1).normal(size=(64, 1, 1, 2)).astype(np.float32)
LABELS = (np.arange(64) % 4).astype(np.int32)

MLP = dict(model="mlp")  # G with BatchNorm, on 8x8 images.
TOY = dict(dataset="toy_ring8", model="toy_mlp")  # 2-d points: the cheapest step.
WGAN_SCHEDULE = dict(loss="wgan", optimizer="rmsprop", d_steps_schedule="wgan",
                     num_d_steps=2)
# name -> (Config overrides, guarded). Together the rows cover every update order, k > 1,
# the WGAN critic schedule, unrolling (in both orders that take it), packing, feature
# matching, EMA, the gradient penalty, label smoothing and conditional labels; the
# guarded step (what a population member runs) for each order and the schedule's loop.
VARIANTS = {
    "d_then_g_k2_smoothing_ema": (
        {**MLP, "num_d_steps": 2, "label_smoothing": 0.1, "g_ema_decay": 0.9}, False),
    "g_then_d_k2_packing": (
        {**MLP, "update_order": "g_then_d", "num_d_steps": 2, "pack": 2}, False),
    "simultaneous_feature_matching_unrolled": (
        {**TOY, "update_order": "simultaneous", "feature_matching": True,
         "unroll_steps": 2}, False),
    "wgan_schedule": ({**TOY, **WGAN_SCHEDULE}, False),
    "wgan_gp_conditional_unrolled": (
        {**TOY, "loss": "wgan_gp", "conditional": True, "unroll_steps": 2}, False),
    "guarded_d_then_g_ema_feature_matching": (
        {**TOY, "g_ema_decay": 0.9, "feature_matching": True}, True),
    "guarded_g_then_d_packing": ({**MLP, "update_order": "g_then_d", "pack": 2}, True),
    "guarded_simultaneous": ({**TOY, "update_order": "simultaneous"}, True),
    "guarded_wgan_schedule": ({**TOY, **WGAN_SCHEDULE}, True),
}


def setup(overrides):
  config = toolkit.tiny_config(**{"batch_size": 8, "latent_dim": 4, **overrides})
  config.validate()
  toy = config.model == "toy_mlp"
  shape = POINTS.shape[1:] if toy else IMAGES.shape[1:]
  gan = toolkit.shrink(make_gan(config, shape, 4 if config.conditional else 0))
  if toy and not config.conditional:
    gan = gan._replace(generator=gan.generator.clone(hidden=(8,)),
                       discriminator=gan.discriminator.clone(hidden=(8,)))
  data = POINTS if toy else IMAGES
  labels = LABELS if config.conditional else None
  return config, gan, data, labels


def twenty_steps(steps, guarded: bool):
  if guarded:
    def step(state, data, labels):
      state, metrics, nonfinite = steps.guarded_train_step(state, data, labels, True)
      return state, {**metrics, "nonfinite": nonfinite}
  else:
    step = steps.train_step
  return repeat_step(step, NUM_STEPS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_parts_compute_the_split_factorys_20_steps_bit_for_bit(name):
  overrides, guarded = VARIANTS[name]
  config, gan, data, labels = setup(overrides)
  state = compile_once(gan.init, jax.random.PRNGKey(7))(jax.random.PRNGKey(7))
  # Both compiled alike (one-shot options: a fraction of the optimised compile time).
  got, want = (
      compile_once(twenty_steps(make(config, gan, len(data)), guarded), state, data,
                   labels)(state, data, labels)
      for make in (make_steps, steps_before_split.make_steps))
  assert int(got[0].step) == NUM_STEPS
  toolkit.assert_trees_equal(got, want)


# --------------------------------------------------------------------------- one truth
def toy_gan(config, **replace):
  gan = make_gan(config, POINTS.shape[1:])
  return gan._replace(generator=gan.generator.clone(hidden=(8,)),
                      discriminator=gan.discriminator.clone(hidden=(8,)), **replace)


@pytest.mark.parametrize("gan_ema, config_decay", [(True, 0.0), (False, 0.999)])
def test_a_gan_and_a_config_that_disagree_on_the_ema_are_refused_naming_both(
    gan_ema, config_decay):
  config = toolkit.tiny_config(**TOY, g_ema_decay=config_decay)
  gan = toy_gan(config, g_ema=gan_ema)
  with pytest.raises(ValueError, match=rf"GAN.g_ema={gan_ema} but "
                                       rf"Config.g_ema_decay={config_decay}"):
    make_steps(config, gan, len(POINTS))


def test_a_users_gan_with_an_ema_trains_it_with_the_configs_decay():
  from jaxgan.state import gan_from_modules
  config = toolkit.tiny_config(**TOY)
  modules = toy_gan(config)
  gan = gan_from_modules(modules.generator, modules.discriminator, image_shape=(1, 1, 2),
                         latent_dim=4, g_ema=True)
  with pytest.raises(ValueError, match="Config.g_ema_decay=0.0"):
    make_steps(config, gan, len(POINTS))  # Before: an "EMA" of decay 0, equal to G.
  steps = make_steps(dataclasses.replace(config, g_ema_decay=0.5), gan, len(POINTS))
  state = compile_once(gan.init, jax.random.PRNGKey(0))(jax.random.PRNGKey(0))
  new, _ = compile_once(steps.train_step, state, POINTS)(state, POINTS)
  # Step 0's decay is min(0.5, 1/10): 0.1 of the old G, 0.9 of the new.
  want = jax.tree_util.tree_map(lambda e, n: 0.1 * e + 0.9 * n,
                                toolkit.host_tree(state.g.params),
                                toolkit.host_tree(new.g.params))
  toolkit.assert_trees_close(new.g_ema["params"], want, 1e-6)


def test_a_gan_and_a_config_that_disagree_on_packing_are_refused_naming_both():
  config = toolkit.tiny_config(**TOY, pack=2)
  with pytest.raises(ValueError, match=r"GAN.pack=1 .* but Config.pack=2"):
    make_steps(config, toy_gan(config, pack=1), len(POINTS))


# --------------------------------------------------------------------------- new parts
@pytest.fixture
def registered():
  """The registries of terms and augmentations, restored after the test (they are
  module state: a part registered here must not reach other tests)."""
  from jaxgan.steps import augment, terms
  registries = (terms.D_TERMS, terms.G_TERMS, augment.AUGMENTATIONS)
  saved = [dict(r) for r in registries]
  yield terms, augment
  for registry, before in zip(registries, saved):
    registry.clear()
    registry.update(before)


WEIGHT_DECAY = 0.25


def weight_decay(params_of):
  """A term c·Σ p² over the parameters `params_of(ctx)`; its gradient is 2c·p."""
  def builder(settings, gan):
    def term(ctx):
      value = WEIGHT_DECAY * sum(jnp.sum(p ** 2)
                                 for p in jax.tree_util.tree_leaves(params_of(ctx)))
      return value, {"weight_decay": value}
    return term
  return builder


def sgd_toy(**overrides):
  """The toy GAN with plain SGD (lr 0.5) for both players: an update is -0.5·gradient."""
  import optax
  config = toolkit.tiny_config(**TOY, **overrides)
  gan = toy_gan(config, g_tx=optax.sgd(0.5), d_tx=optax.sgd(0.5))
  return config, gan, compile_once(gan.init, jax.random.PRNGKey(0))(jax.random.PRNGKey(0))


def assert_the_term_is_all_that_differs(loss, with_loss, plain, with_term, before):
  """`with_term` (params after the step with the weight-decay term) differs from `plain`
  (without) by the term's gradient 2c·p times SGD's -0.5; its loss by the term's value."""
  decay = WEIGHT_DECAY * sum(float(np.sum(np.asarray(p, np.float64) ** 2))
                             for p in jax.tree_util.tree_leaves(before))
  assert float(with_loss) == pytest.approx(float(loss) + decay, rel=1e-5)
  want = jax.tree_util.tree_map(lambda p: -0.5 * 2 * WEIGHT_DECAY * np.asarray(p),
                                toolkit.host_tree(before))
  got = jax.tree_util.tree_map(lambda x, y: np.asarray(x) - np.asarray(y),
                               toolkit.host_tree(with_term), toolkit.host_tree(plain))
  toolkit.assert_trees_close(got, want, 1e-4)


def test_a_registered_d_regularizer_enters_ds_loss_and_gradient_without_a_factory_edit(
    registered):
  terms, _ = registered
  config, gan, state = sgd_toy()
  real, key = POINTS[:8], jax.random.PRNGKey(3)
  plain = compile_once(make_steps(config, gan, 64).d_step, state, real, key)
  terms.d_term("test_weight_decay", stream=5)(weight_decay(lambda ctx: ctx.d_params))
  with_term = compile_once(make_steps(config, gan, 64).d_step, state, real, key)
  (a, a_metrics), (b, b_metrics) = plain(state, real, key), with_term(state, real, key)
  assert float(b_metrics["weight_decay"]) == pytest.approx(
      float(b_metrics["d_loss"]) - float(a_metrics["d_loss"]), rel=1e-4)
  assert_the_term_is_all_that_differs(a_metrics["d_loss"], b_metrics["d_loss"],
                                      a.d.params, b.d.params, state.d.params)


def test_a_registered_g_term_enters_gs_loss_and_gradient_without_a_factory_edit(
    registered):
  terms, _ = registered
  config, gan, state = sgd_toy()
  key = jax.random.PRNGKey(3)
  plain = compile_once(make_steps(config, gan, 64).g_step, state, key)
  terms.g_term("test_weight_decay", stream=5)(weight_decay(lambda ctx: ctx.g_params))
  with_term = compile_once(make_steps(config, gan, 64).g_step, state, key)
  (a, a_metrics, _), (b, b_metrics, _) = plain(state, key), with_term(state, key)
  assert_the_term_is_all_that_differs(a_metrics["g_loss"], b_metrics["g_loss"],
                                      a.g.params, b.g.params, state.g.params)


def test_a_registered_augmentation_is_what_d_sees_in_both_steps(registered):
  _, augment = registered
  augment.augmentation("test_double")(lambda settings, gan: lambda x, key: 2.0 * x)
  config, gan, state = sgd_toy()
  steps = make_steps(config, gan, 64)
  real, key = POINTS[:8], jax.random.PRNGKey(3)
  _, d_metrics = compile_once(steps.d_step, state, real, key)(state, real, key)
  _, g_metrics, fake = compile_once(steps.g_step, state, key)(state, key)

  def d(x):
    return gan.discriminator.apply({"params": state.d.params}, x, train=True)

  real_logits, fake_logits = compile_once(lambda a, b: (d(2.0 * a), d(2.0 * b)),
                                          real, fake)(real, fake)
  assert float(d_metrics["d_real"]) == pytest.approx(
      float(np.mean(jax.nn.sigmoid(real_logits))), rel=1e-6)
  assert float(g_metrics["g_loss"]) == pytest.approx(
      float(gan.loss.g_loss(fake_logits)), rel=1e-6)


def counting_term(settings, gan):
  """A D term with a run-time weight and a state: w · E D(x)² on the real batch, and the
  number of D updates and the last mean real logit kept in its aux."""
  from jaxgan.steps.terms import Term

  def apply(ctx):
    value = ctx.hparams["test_w"] * jnp.mean(ctx.real_out.logits ** 2)
    aux = {"updates": ctx.aux["updates"] + 1,
           "real_logit": jnp.mean(ctx.real_out.logits)}
    return value, {"test_term": value}, aux
  return Term(apply, hparams={"test_w": 0.5},
              aux={"updates": jnp.int32(0), "real_logit": jnp.float32(0.0)})


def test_a_terms_weight_and_state_live_in_the_state_and_pass_the_gate(registered):
  terms, _ = registered
  terms.d_term("test_counting", stream=6)(counting_term)
  config, gan, _ = sgd_toy(num_d_steps=2)
  steps = make_steps(config, gan, 64)
  state = compile_once(steps.init, jax.random.PRNGKey(0))(jax.random.PRNGKey(0))
  assert float(state.hparams["test_w"]) == 0.5
  assert int(state.aux["test_counting"]["updates"]) == 0
  step = compile_once(steps.guarded_train_step, state, POINTS, None, True)
  one, metrics, _ = step(state, POINTS, None, True)
  two, _, _ = step(one, POINTS, None, True)
  assert int(two.aux["test_counting"]["updates"]) == 4  # k = 2 D updates per step.
  assert float(metrics["test_term"]) > 0
  # The weight is read from the state: twice the weight, twice the term (one D update,
  # which computes its loss before it moves D).
  d_step = compile_once(steps.d_step, state, POINTS[:8], jax.random.PRNGKey(1))
  _, once = d_step(state, POINTS[:8], jax.random.PRNGKey(1))
  _, twice = d_step(state.replace(hparams={"test_w": jnp.float32(1.0)}), POINTS[:8],
                    jax.random.PRNGKey(1))
  assert float(twice["test_term"]) == pytest.approx(2 * float(once["test_term"]),
                                                    rel=1e-6)
  # A member whose gate is closed keeps its term state with the rest.
  closed, _, _ = step(one, POINTS, None, False)
  toolkit.assert_trees_equal(closed.aux, one.aux)
  # GAN.init's state lacks them: the step says how to make one that has them.
  with pytest.raises(ValueError, match=r"read \['test_counting', 'test_w'\].*Steps.init"):
    steps.train_step(gan.init(jax.random.PRNGKey(0)), POINTS)
