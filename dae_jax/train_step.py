"""One pure training step for every objective: DAE, DVAE and DAAE differ only in the latent regulariser.

``train_step(state, batch, key, spec=...)``: ``spec`` is bound with ``functools.partial`` before jitting, so the
jitted function is ``(state, batch, key) -> (state, metrics)``. ``key`` is the run's base key; the step folds in
its own step number, so a resumed run draws exactly the noise an uninterrupted one would.
"""

import dataclasses
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dae_jax import corruption, losses, models
from dae_jax.train_state import TrainState


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """Everything static about a step: networks, optimisers and the objective's constants."""

  autoencoder: nn.Module
  ae_tx: optax.GradientTransformation
  objective: str
  reconstruction: str
  reduction: str
  sigma: float
  latent_dim: int
  num_copies: int = 1
  clip_corruption: bool = False
  kl_weight: float = 1.0
  adversarial_weight: float = 1.0
  discriminator: Optional[nn.Module] = None
  disc_tx: Optional[optax.GradientTransformation] = None


def _encode_decode(module, noisy, eps):
  """Runs inside ``Autoencoder.apply``: encoder, reparameterised sample when variational, decoder."""
  mean, log_var = module.encode(noisy)
  code = mean if log_var is None else mean + jnp.exp(0.5 * log_var) * eps
  return module.decode(code), mean, log_var, code


def _regulariser(spec: StepSpec, mean, log_var, code, disc_params, key):
  """The latent term (already weighted) and its metrics. Codes of M corrupted copies are averaged first, which
  integrates the encoder's posterior over the corruption (iDAAE); with M = 1 it is the plain term."""
  if spec.objective == "dvae":
    kl = losses.kl_to_standard_normal(mean, log_var).mean()
    return spec.kl_weight * kl, {"kl": kl}
  if spec.objective == "daae":
    integrated = code.reshape(spec.num_copies, -1, code.shape[-1]).mean(0)
    fake_logits = spec.discriminator.apply({"params": disc_params}, integrated, deterministic=False,
                                           rngs={"dropout": key})
    adversarial = losses.generator(fake_logits)
    return spec.adversarial_weight * adversarial, {"adversarial": adversarial}
  return jnp.zeros((), mean.dtype), {}


def _autoencoder_loss(ae_params, state: TrainState, spec: StepSpec, batch, keys):
  noisy = corruption.gaussian_copies(keys["corrupt"], batch, spec.sigma, spec.num_copies,
                                     clip=spec.clip_corruption)
  noisy = noisy.reshape(-1, *batch.shape[1:])
  eps = jax.random.normal(keys["posterior"], (noisy.shape[0], spec.latent_dim), noisy.dtype)
  (logits, mean, log_var, code), mutated = spec.autoencoder.apply(
      {"params": ae_params, "batch_stats": state.batch_stats}, noisy, eps,
      method=_encode_decode, mutable=["batch_stats"])
  targets = jnp.broadcast_to(batch, (spec.num_copies, *batch.shape)).reshape(noisy.shape)
  reconstruction = losses.reconstruction(logits, targets, spec.reconstruction, spec.reduction).mean()
  regulariser, metrics = _regulariser(spec, mean, log_var, code, state.disc_params, keys["gen_dropout"])
  integrated = jax.lax.stop_gradient(code.reshape(spec.num_copies, -1, code.shape[-1]).mean(0))
  metrics = dict(metrics, reconstruction=reconstruction)
  return reconstruction + regulariser, (metrics, mutated["batch_stats"], integrated)


def _discriminator_update(state: TrainState, spec: StepSpec, codes, keys):
  prior = jax.random.normal(keys["prior"], codes.shape, codes.dtype)

  def loss_fn(disc_params):
    def logits(z):
      return spec.discriminator.apply({"params": disc_params}, z, deterministic=False,
                                      rngs={"dropout": keys["disc_dropout"]})
    return losses.discriminator(logits(prior), logits(codes))

  disc_loss, grads = jax.value_and_grad(loss_fn)(state.disc_params)
  updates, opt_state = spec.disc_tx.update(grads, state.disc_opt_state, state.disc_params)
  return optax.apply_updates(state.disc_params, updates), opt_state, disc_loss


def train_step(state: TrainState, batch: jax.Array, key: jax.Array, *, spec: StepSpec):
  """One update of the autoencoder and, for DAAE, of the discriminator (on the pre-update encodings)."""
  names = ("corrupt", "posterior", "gen_dropout", "prior", "disc_dropout")
  keys = dict(zip(names, jax.random.split(jax.random.fold_in(key, state.step), len(names))))
  grad_fn = jax.value_and_grad(_autoencoder_loss, has_aux=True)
  (loss, (metrics, batch_stats, codes)), grads = grad_fn(state.ae_params, state, spec, batch, keys)
  updates, ae_opt_state = spec.ae_tx.update(grads, state.ae_opt_state, state.ae_params)
  state = state.replace(ae_params=optax.apply_updates(state.ae_params, updates), batch_stats=batch_stats,
                        ae_opt_state=ae_opt_state)
  metrics = dict(metrics, loss=loss)
  if spec.objective == "daae":
    disc_params, disc_opt_state, disc_loss = _discriminator_update(state, spec, codes, keys)
    state = state.replace(disc_params=disc_params, disc_opt_state=disc_opt_state)
    metrics["discriminator"] = disc_loss
  return state.replace(step=state.step + 1), metrics


def spec_from_config(config, data_shape) -> StepSpec:
  """The step's networks, optimisers (Adam for every network) and constants, from a validated config."""
  autoencoder, discriminator = models.build(config.model, data_shape)
  optim = config.optim
  return StepSpec(
      autoencoder=autoencoder,
      ae_tx=optax.adam(optim.learning_rate, b1=optim.b1, b2=optim.b2),
      objective=config.model.objective,
      reconstruction=config.loss.reconstruction,
      reduction=config.loss.reduction,
      sigma=config.noise.sigma,
      latent_dim=config.model.latent_dim,
      num_copies=config.noise.num_copies,
      clip_corruption=config.noise.clip,
      kl_weight=config.loss.kl_weight,
      adversarial_weight=config.loss.adversarial_weight,
      discriminator=discriminator,
      disc_tx=optax.adam(optim.learning_rate, b1=optim.b1, b2=optim.b2) if discriminator else None,
  )
