"""The objectives and reconstruction losses as values: the one table that turns their config names into code.

Each objective (DAE, DVAE, DAAE) says whether its encoder is variational, whether it trains a latent
discriminator, and which latent regulariser it adds to the reconstruction loss. ``config_lib`` takes its allowed
values from these tables and ``experiment`` resolves a config through them once; nothing else tests a name.
"""

from collections.abc import Callable
import dataclasses

import jax
import jax.numpy as jnp

from dae_jax import losses


def _no_regulariser(spec, mean, log_var, codes, disc_params, key):
  del spec, log_var, codes, disc_params, key  # The plain DAE shapes nothing in its latent space.
  return jnp.zeros((), mean.dtype), {}


def _kl_regulariser(spec, mean, log_var, codes, disc_params, key):
  del codes, disc_params, key
  kl = losses.kl_to_standard_normal(mean, log_var).mean()
  return spec.kl_weight * kl, {"kl": kl}


def _adversarial_regulariser(spec, mean, log_var, codes, disc_params, key):
  """The encoder's term of the latent GAN, on codes already averaged over the corrupted copies (iDAAE)."""
  del mean, log_var
  fake_logits = spec.discriminator.apply({"params": disc_params}, codes, deterministic=False, rngs={"dropout": key})
  adversarial = losses.generator(fake_logits)
  return spec.adversarial_weight * adversarial, {"adversarial": adversarial}


@dataclasses.dataclass(frozen=True)
class Objective:
  name: str
  # The encoder returns a mean and a log-variance, and training decodes a reparameterised sample.
  variational: bool
  # A latent discriminator is trained beside the autoencoder, in the same step.
  adversarial: bool
  # (spec, mean, log_var, codes, disc_params, key) -> (weighted term, metrics).
  regulariser: Callable


OBJECTIVES = {
  "dae": Objective("dae", variational=False, adversarial=False, regulariser=_no_regulariser),
  "dvae": Objective("dvae", variational=True, adversarial=False, regulariser=_kl_regulariser),
  "daae": Objective("daae", variational=False, adversarial=True, regulariser=_adversarial_regulariser),
}

# How an adversarial objective's step meets its discriminator; see train_step.StepSpec.adversarial_phases.
ADVERSARIAL_SCHEMES = ("phases", "joint")

RECONSTRUCTION_LOSSES = {"bce": losses.bce, "mse": losses.mse}

# "sum": over pixels, then the batch mean (a proper log-likelihood, so KL weight 1 is the ELBO).
# "mean": over pixels too, which makes the regulariser ~num_pixels times heavier.
REDUCTIONS = {"sum": losses.sum_over_pixels, "mean": losses.mean_over_pixels}


@dataclasses.dataclass(frozen=True)
class ReconstructionLoss:
  """Per-example reconstruction loss from logits, shape [batch]."""

  per_pixel: Callable
  reduce: Callable

  def __call__(self, logits: jax.Array, target: jax.Array) -> jax.Array:
    return self.reduce(self.per_pixel(logits, target))


def reconstruction_loss(kind: str, reduction: str) -> ReconstructionLoss:
  return ReconstructionLoss(RECONSTRUCTION_LOSSES[kind], REDUCTIONS[reduction])
