"""One pure training step for every objective: DAE, DVAE and DAAE differ only in their ``objectives.Objective``.

``train_step(state, batch, key, spec=...)``: ``spec`` is bound with ``functools.partial`` before jitting, so the
jitted function is ``(state, batch, key) -> (state, metrics)``. ``key`` is the run's "train" key; every noise
of the step comes from ``rng.step_keys(key, state.step)``, so a resumed run draws exactly the noise an
uninterrupted one would.
"""

from collections.abc import Callable
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dae_jax import corruption, losses, models, rng
from dae_jax.data import loader
from dae_jax.objectives import Objective
from dae_jax.train_state import TrainState


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """Everything static about a step: networks, optimisers, the resolved objective and loss, and constants."""

  autoencoder: nn.Module
  ae_tx: optax.GradientTransformation
  objective: Objective
  # (logits, targets) -> per-example loss; see objectives.reconstruction_loss.
  reconstruction_loss: Callable
  sigma: float
  latent_dim: int
  num_copies: int = 1
  clip_corruption: bool = False
  # Mirror each image left-right with probability 1/2 before corrupting it.
  flip: bool = False
  kl_weight: float = 1.0
  adversarial_weight: float = 1.0
  discriminator: nn.Module | None = None
  disc_tx: optax.GradientTransformation | None = None
  # The adversarial objective's scheme (objectives.ADVERSARIAL_SCHEMES): "phases" updates the autoencoder on the
  # reconstruction alone, then the discriminator, then the encoder on the adversarial loss alone with an Adam of
  # its own (Makhzani et al.'s AAE); "joint" adds the weighted adversarial term to the reconstruction loss.
  adversarial_phases: bool = False
  # Discriminator updates per step, each on fresh prior samples and dropout.
  disc_steps: int = 1
  # Weight of the R1 penalty E||grad_z D(z)||^2 / 2 on prior samples.
  disc_gradient_penalty: float = 0.0


def integrate_copies(codes: jax.Array, num_copies: int) -> jax.Array:
  """The mean code of each example's M corrupted copies (stacked copy-major): integrating the encoder's
  posterior over the corruption, as the iDAAE does; the codes themselves when M = 1."""
  return codes.reshape(num_copies, -1, codes.shape[-1]).mean(0)


def apply_optimizer(tx: optax.GradientTransformation, grads, opt_state, params):
  """(new params, new optimiser state) after one update."""
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def _encode_decode(module, noisy, eps):
  """Runs inside ``Autoencoder.apply``: encoder, posterior sample when variational, decoder."""
  mean, log_var = module.encode(noisy)
  code = models.reparameterise(mean, log_var, eps)
  return module.decode(code), mean, log_var, code


def _autoencoder_loss(ae_params, state: TrainState, spec: StepSpec, batch, keys):
  noisy = corruption.gaussian_copies(keys["corrupt"], batch, spec.sigma, spec.num_copies, clip=spec.clip_corruption)
  noisy = noisy.reshape(-1, *batch.shape[1:])
  eps = jax.random.normal(keys["posterior"], (noisy.shape[0], spec.latent_dim), noisy.dtype)
  (logits, mean, log_var, code), mutated = spec.autoencoder.apply(
    {"params": ae_params, "batch_stats": state.batch_stats}, noisy, eps, method=_encode_decode, mutable=["batch_stats"]
  )
  targets = jnp.broadcast_to(batch, (spec.num_copies, *batch.shape)).reshape(noisy.shape)
  # float32 whatever the decoder computes in: a bfloat16 sum over thousands of pixels keeps ~3 digits.
  reconstruction = spec.reconstruction_loss(logits.astype(jnp.float32), targets).mean()
  codes = integrate_copies(code, spec.num_copies)
  if spec.adversarial_phases:  # The encoder meets the discriminator in a phase of its own (_regularisation_phase).
    regulariser, metrics = jnp.zeros((), reconstruction.dtype), {}
  else:
    regulariser, metrics = spec.objective.regulariser(
      spec, mean, log_var, codes, state.disc_params, keys["gen_dropout"]
    )
  metrics = dict(metrics, reconstruction=reconstruction)
  return reconstruction + regulariser, (metrics, mutated["batch_stats"], (noisy, jax.lax.stop_gradient(codes)))


def _corrupted_codes(ae_params, state: TrainState, spec: StepSpec, noisy):
  """The codes the regulariser sees, from the current encoder on the step's corrupted batch (BatchNorm on the
  batch, as in training; the statistics it would update are left as the reconstruction phase set them)."""
  mean, log_var = spec.autoencoder.apply(
    {"params": ae_params, "batch_stats": state.batch_stats}, noisy, method="encode", mutable=["batch_stats"]
  )[0]
  del log_var  # Adversarial objectives are not variational.
  return integrate_copies(mean, spec.num_copies)


def _regularisation_phase(state: TrainState, spec: StepSpec, noisy, keys):
  """The AAE's encoder update: the adversarial loss alone, with the encoder's own Adam (``gen_opt_state``), so its
  step size does not depend on how large the reconstruction loss is."""

  def loss_fn(ae_params):
    codes = _corrupted_codes(ae_params, state, spec, noisy)
    fake_logits = spec.discriminator.apply(
      {"params": state.disc_params}, codes, deterministic=False, rngs={"dropout": keys["gen_dropout"]}
    )
    adversarial = losses.generator(fake_logits)
    return spec.adversarial_weight * adversarial, adversarial

  (_, adversarial), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.ae_params)
  ae_params, gen_opt_state = apply_optimizer(spec.ae_tx, grads, state.gen_opt_state, state.ae_params)
  return state.replace(ae_params=ae_params, gen_opt_state=gen_opt_state), adversarial


def _discriminator_loss(disc_params, spec: StepSpec, prior, codes, dropout_key):
  def logits(z):
    return spec.discriminator.apply({"params": disc_params}, z, deterministic=False, rngs={"dropout": dropout_key})

  loss = losses.discriminator(logits(prior), logits(codes))
  if spec.disc_gradient_penalty:
    # R1 (Mescheder et al. 2018): the summed logits' gradient is each sample's own, as the samples are independent.
    grad_z = jax.grad(lambda z: logits(z).sum())(prior)
    loss = loss + spec.disc_gradient_penalty / 2 * jnp.mean(jnp.sum(grad_z**2, axis=-1))
  return loss


def _discriminator_update(state: TrainState, spec: StepSpec, codes, keys):
  """``spec.disc_steps`` updates on the same codes, each with fresh prior samples and dropout."""
  disc_params, opt_state = state.disc_params, state.disc_opt_state
  for i in range(spec.disc_steps):
    prior = jax.random.normal(jax.random.fold_in(keys["prior"], i), codes.shape, codes.dtype)
    dropout_key = jax.random.fold_in(keys["disc_dropout"], i)
    disc_loss, grads = jax.value_and_grad(_discriminator_loss)(disc_params, spec, prior, codes, dropout_key)
    disc_params, opt_state = apply_optimizer(spec.disc_tx, grads, opt_state, disc_params)
  return disc_params, opt_state, disc_loss


def train_step(state: TrainState, batch: jax.Array, key: jax.Array, *, spec: StepSpec):
  """One update of the autoencoder and, when adversarial, of the discriminator (on the pre-update codes in the
  joint scheme) and, in the phases scheme, of the encoder against it."""
  keys = rng.step_keys(key, state.step)
  if spec.flip:
    batch = loader.random_flip(keys["flip"], batch)
  grad_fn = jax.value_and_grad(_autoencoder_loss, has_aux=True)
  (loss, (metrics, batch_stats, (noisy, codes))), grads = grad_fn(state.ae_params, state, spec, batch, keys)
  ae_params, ae_opt_state = apply_optimizer(spec.ae_tx, grads, state.ae_opt_state, state.ae_params)
  state = state.replace(ae_params=ae_params, batch_stats=batch_stats, ae_opt_state=ae_opt_state)
  metrics = dict(metrics, loss=loss)
  if spec.objective.adversarial:
    if spec.adversarial_phases:  # The discriminator meets the codes of the encoder just updated.
      codes = jax.lax.stop_gradient(_corrupted_codes(state.ae_params, state, spec, noisy))
    disc_params, disc_opt_state, disc_loss = _discriminator_update(state, spec, codes, keys)
    state = state.replace(disc_params=disc_params, disc_opt_state=disc_opt_state)
    metrics["discriminator"] = disc_loss
    if spec.adversarial_phases:
      state, metrics["adversarial"] = _regularisation_phase(state, spec, noisy, keys)
  return state.replace(step=state.step + 1), metrics
