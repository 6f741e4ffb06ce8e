"""D regularizers, registered as D terms (jaxgan.steps.terms.D_TERMS): R1 and R2
(Mescheder et al. 2018), optionally lazy (StyleGAN2), and LeCam (Tseng et al. 2021).

Each is added to D's loss in D's updates (of every update order and critic schedule, and
in the unrolled D's own steps), with its weight a sweepable run-time hyperparameter read
from `GANState.hparams`. A term that keeps state (LeCam's anchors, the lazy interval's
counter) keeps it in `GANState.aux[name]`: checkpointed with the state, written through
the divergence gate with D's update.

  * 'r1' / 'r2' (--r1_gamma, --r2_gamma): gamma/2 · E_x ‖∇_x D(x)‖², on the real batch
    (R1) or on D's fake batch (R2); metrics 'r1' / 'r2' (the unweighted E‖∇D‖²). With
    --d_reg_interval=N > 1 (StyleGAN2's lazy regularization) the penalty is computed on
    D updates 0, N, 2N, ... only, weighted by N; the metric is then the last computed
    value.
  * 'lecam' (--lecam_weight, --lecam_decay, --lecam_start): lambda · (E relu(D(x) −
    a_fake)² + E relu(a_real − D(G(z)))²), a_real and a_fake the EMA anchors of D's mean
    output on real and on fake batches; metric 'lecam' (unweighted; 0 before the start).

D(x) is D's raw output: the logits for cross-entropy losses, the critic for WGAN and
hinge (SNGAN/BigGAN use LeCam with hinge).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgan.steps.terms import DTermContext, Term, d_term

Array = jax.Array

# Each term's key: fold_in(D's terms key, stream) (jaxgan.rng; 0 is the gradient
# penalty's). R1's and R2's extra D passes draw their own dropout and augmentation;
# LeCam draws nothing.
R1_STREAM, R2_STREAM, LECAM_STREAM = 1, 2, 3
# The authors' initial anchors (lecam-gan third_party/utils.py ema_losses, init=1000.).
# Never read: updates before --lecam_start (>= 1) replace them with the batch's means.
LECAM_INIT = 1000.0


def gradient_sq_norm(ctx: DTermContext, x: Array, key: Array) -> Array:
  """E_x ‖∇_x D(x)‖²: per example the squared gradient of D's output with respect to
  its input x [B, ...] (summed over every input element), averaged over the batch.

  The gradient of the sum of D's outputs holds each example's own gradient in its row
  only for a D that treats examples independently (config refuses R1/R2 with a model
  that couples them: BatchNorm, minibatch discrimination). The pass is D in train mode
  with D's statistics before this update's passes (what it would write is dropped), its
  own dropout and augmentation drawn from `key`; the gradient is taken through the
  augmentation, with respect to the un-augmented input (as StyleGAN2-ADA's run_D)."""
  def total(x):
    return jnp.sum(ctx.nets.discriminate(ctx.d_params, ctx.batch_stats, x, key,
                                         ctx.labels).logits)
  grads = jax.grad(total)(x)
  return jnp.mean(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1))


def _zero_centered(name: str, flag: str, batch_of):
  """The builder of R1 (batch_of: the real batch) or R2 (D's fake batch).

  Mescheder et al.'s GAN_stability (gan_training/train.py, compute_grad2 and
  discriminator_trainstep): the squared gradient of D's logits w.r.t. its input, summed
  over pixels, averaged over the batch. Their code multiplies it by `reg_param`, not
  reg_param/2, so their reg_param=10 is --r1_gamma=20; the flag is the paper's and
  StyleGAN2's gamma (r1_penalty * (r1_gamma / 2)).

  Lazy (StyleGAN2, training_loop.py and loss.py): StyleGAN2 takes a separate optimizer
  step 'Dreg' of the penalty alone, times the interval (gain), on minibatches 0, N,
  2N, ..., and to keep Adam's per-minibatch dynamics it scales D's lr by N/(N+1) and its
  betas to the power N/(N+1) (mb_ratio). Here a D update is one optimizer step of one
  program: on updates 0, N, 2N, ... (counted in the term's aux, per D update) the
  penalty times N is added to that update's loss (lax.cond: the other updates skip the
  extra pass), so D takes one step per minibatch as it does without the penalty, and
  the optimizer is left as configured (there is no extra step for mb_ratio to offset).
  The unrolled D's extra steps (--unroll_steps) read the counter without advancing it,
  so they take the penalty exactly when D's update of that step does.
  """
  def builder(settings, gan):
    config = settings.config
    if getattr(config, flag) == 0 and not settings.varies(flag):
      return None
    interval = config.d_reg_interval

    def penalty(ctx: DTermContext) -> Array:
      return gradient_sq_norm(ctx, batch_of(ctx), ctx.key)

    if interval == 1:
      def apply(ctx: DTermContext):
        value = penalty(ctx)
        return ctx.hparams[flag] / 2 * value, {name: value}
      return Term(apply, hparams={flag: getattr(config, flag)})

    def lazy(ctx: DTermContext):
      count = ctx.aux["d_updates"]
      due = count % interval == 0
      # Under vmap (a population) the predicate is batched and both branches run.
      value = jax.lax.cond(due, lambda: penalty(ctx), lambda: jnp.zeros((), jnp.float32))
      last = jnp.where(due, value, ctx.aux["last"])
      return (ctx.hparams[flag] / 2 * interval * value, {name: last},
              {"d_updates": count + 1, "last": last})
    return Term(lazy, hparams={flag: getattr(config, flag)},
                aux={"d_updates": jnp.int32(0), "last": jnp.float32(0.0)})
  return builder


r1 = d_term("r1", stream=R1_STREAM)(
    _zero_centered("r1", "r1_gamma", lambda ctx: ctx.real))
r2 = d_term("r2", stream=R2_STREAM)(
    _zero_centered("r2", "r2_gamma", lambda ctx: ctx.fake))


@d_term("lecam", stream=LECAM_STREAM)
def lecam(settings, gan):
  """LeCam regularization as the authors' BigGAN code (google/lecam-gan: biggan_cifar/
  losses.py `lecam_reg` and `loss_hinge_dis`, third_party/utils.py `ema_losses`,
  third_party/train_fns.py): on each D update, first the anchors take this batch's mean
  outputs, a ← a·decay + mean·(1 − decay), with decay 0 (the anchor is the batch's mean)
  while the train step itr < --lecam_start; then the penalty mean(relu(D(x) −
  a_fake)²) + mean(relu(a_real − D(G(z)))²) on the updated anchors, added with weight
  lambda only when itr > --lecam_start. Their defaults: decay 0.9, start 1000, lambda
  0.3 (their scripts' --LC).

  itr is the train step (their G iteration, each of whose num_D_steps D updates updates
  the anchors): counted here as D updates // --num_d_steps in the term's aux, so a
  critic schedule that varies the D updates per step is refused. Deviations: their
  anchors are Python floats outside the checkpoint, and updated only by the hinge loss;
  here they are float32 in the state (resumed exactly) and kept for every loss, on D's
  raw outputs. The unrolled D's extra steps read the anchors without advancing them."""
  config = settings.config
  if config.lecam_weight == 0 and not settings.varies("lecam_weight"):
    return None
  if settings.d_steps_schedule:
    raise ValueError(f"LeCam counts train steps as D updates // num_d_steps, which "
                     f"d_steps_schedule={settings.d_steps_schedule!r} varies; use "
                     "d_steps_schedule='' with LeCam")
  k, decay, start = settings.num_d_steps, config.lecam_decay, config.lecam_start

  def apply(ctx: DTermContext):
    aux = ctx.aux
    itr = aux["d_updates"] // k
    beta = jnp.where(itr < start, 0.0, decay).astype(jnp.float32)
    real, fake = ctx.real_out.logits, ctx.fake_out.logits
    # The anchors take the batch's means as numbers (the authors' .item()).
    anchor_real = aux["real"] * beta + jax.lax.stop_gradient(jnp.mean(real)) * (1 - beta)
    anchor_fake = aux["fake"] * beta + jax.lax.stop_gradient(jnp.mean(fake)) * (1 - beta)
    penalty = (jnp.mean(jnp.square(jax.nn.relu(real - anchor_fake)))
               + jnp.mean(jnp.square(jax.nn.relu(anchor_real - fake))))
    value = jnp.where(itr > start, penalty, 0.0)
    return (ctx.hparams["lecam_weight"] * value, {"lecam": value},
            {"d_updates": aux["d_updates"] + 1, "real": anchor_real, "fake": anchor_fake})
  return Term(apply, hparams={"lecam_weight": config.lecam_weight},
              aux={"d_updates": jnp.int32(0), "real": jnp.float32(LECAM_INIT),
                   "fake": jnp.float32(LECAM_INIT)})
