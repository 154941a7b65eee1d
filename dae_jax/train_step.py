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
  reconstruction = spec.reconstruction_loss(logits, targets).mean()
  codes = integrate_copies(code, spec.num_copies)
  regulariser, metrics = spec.objective.regulariser(spec, mean, log_var, codes, state.disc_params, keys["gen_dropout"])
  metrics = dict(metrics, reconstruction=reconstruction)
  return reconstruction + regulariser, (metrics, mutated["batch_stats"], jax.lax.stop_gradient(codes))


def _discriminator_update(state: TrainState, spec: StepSpec, codes, keys):
  prior = jax.random.normal(keys["prior"], codes.shape, codes.dtype)

  def loss_fn(disc_params):
    def logits(z):
      return spec.discriminator.apply(
        {"params": disc_params}, z, deterministic=False, rngs={"dropout": keys["disc_dropout"]}
      )

    return losses.discriminator(logits(prior), logits(codes))

  disc_loss, grads = jax.value_and_grad(loss_fn)(state.disc_params)
  disc_params, opt_state = apply_optimizer(spec.disc_tx, grads, state.disc_opt_state, state.disc_params)
  return disc_params, opt_state, disc_loss


def train_step(state: TrainState, batch: jax.Array, key: jax.Array, *, spec: StepSpec):
  """One update of the autoencoder and, when adversarial, of the discriminator (on the pre-update codes)."""
  keys = rng.step_keys(key, state.step)
  if spec.flip:
    batch = loader.random_flip(keys["flip"], batch)
  grad_fn = jax.value_and_grad(_autoencoder_loss, has_aux=True)
  (loss, (metrics, batch_stats, codes)), grads = grad_fn(state.ae_params, state, spec, batch, keys)
  ae_params, ae_opt_state = apply_optimizer(spec.ae_tx, grads, state.ae_opt_state, state.ae_params)
  state = state.replace(ae_params=ae_params, batch_stats=batch_stats, ae_opt_state=ae_opt_state)
  metrics = dict(metrics, loss=loss)
  if spec.objective.adversarial:
    disc_params, disc_opt_state, disc_loss = _discriminator_update(state, spec, codes, keys)
    state = state.replace(disc_params=disc_params, disc_opt_state=disc_opt_state)
    metrics["discriminator"] = disc_loss
  return state.replace(step=state.step + 1), metrics
