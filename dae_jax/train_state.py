"""The training state: every array that changes during training, and nothing else.

Hyperparameters stay in the config (never in checkpoints, so a resumed run follows the config it is given);
the networks and optimisers travel in ``train_step.StepSpec``.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array
  ae_params: Any
  batch_stats: Any
  ae_opt_state: Any
  # None for objectives without a discriminator.
  disc_params: Any | None = None
  disc_opt_state: Any | None = None
  # The encoder's own Adam state for the adversarial phase of the "phases" scheme; None otherwise.
  gen_opt_state: Any | None = None

  def autoencoder_variables(self) -> dict:
    """What ``Autoencoder.apply`` and ``sample_chain`` take as ``params``."""
    return {"params": self.ae_params, "batch_stats": self.batch_stats}


def create(
  key: jax.Array, autoencoder, discriminator, ae_tx, disc_tx, example_batch: jax.Array, latent_dim: int, gen_tx=None
) -> TrainState:
  """Fresh parameters for ``example_batch``'s shape; discriminator ones only when ``discriminator`` is given, and
  a second optimiser state for the autoencoder's parameters only when ``gen_tx`` is."""
  ae_key, disc_key = jax.random.split(key)
  variables = autoencoder.init(ae_key, example_batch, use_running_average=False)
  disc_params = disc_opt_state = None
  if discriminator is not None:
    codes = jnp.zeros((example_batch.shape[0], latent_dim), example_batch.dtype)
    disc_params = discriminator.init(disc_key, codes, deterministic=True)["params"]
    disc_opt_state = disc_tx.init(disc_params)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    ae_params=variables["params"],
    batch_stats=variables.get("batch_stats", {}),
    ae_opt_state=ae_tx.init(variables["params"]),
    disc_params=disc_params,
    disc_opt_state=disc_opt_state,
    gen_opt_state=gen_tx.init(variables["params"]) if gen_tx is not None else None,
  )


@jax.jit
def all_finite(tree) -> jax.Array:
  """Whether every float in ``tree`` (parameters, optimiser moments, BatchNorm statistics) is finite."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)
