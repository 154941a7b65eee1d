"""A config turned into objects: the model, the step spec, the mesh and the run's keys; fresh and restored states.

Training, evaluation, sampling and ``pretrained`` all start here, so none of them imports the training loop.
"""

import dataclasses
import functools

from absl import logging
import jax
import ml_collections
import numpy as np
import optax

from dae_jax import checkpointing, config_lib, models, objectives, rng, sharding, train_state
from dae_jax.errors import InputError
from dae_jax.train_step import StepSpec


@dataclasses.dataclass(frozen=True)
class Experiment:
  config: ml_collections.ConfigDict
  spec: StepSpec
  mesh: jax.sharding.Mesh
  data_shape: tuple
  init_key: jax.Array
  step_key: jax.Array
  figure_key: jax.Array


def step_spec(config: ml_collections.ConfigDict, data_shape) -> StepSpec:
  """The step's networks, optimisers (Adam for every network), objective and constants, from a valid config."""
  objective = objectives.OBJECTIVES[config.model.objective]
  autoencoder, discriminator = models.build(config.model, data_shape, objective)
  optim = config.optim

  def adam():
    return optax.adam(optim.learning_rate, b1=optim.b1, b2=optim.b2)

  return StepSpec(
    autoencoder=autoencoder,
    ae_tx=adam(),
    objective=objective,
    reconstruction_loss=objectives.reconstruction_loss(config.loss.reconstruction, config.loss.reduction),
    sigma=config.noise.sigma,
    latent_dim=config.model.latent_dim,
    num_copies=config.noise.num_copies,
    clip_corruption=config.noise.clip,
    flip=config.data.flip,
    kl_weight=config.loss.kl_weight,
    adversarial_weight=config.loss.adversarial_weight,
    discriminator=discriminator,
    disc_tx=adam() if discriminator else None,
  )


def build(config: ml_collections.ConfigDict) -> Experiment:
  """Validates the config and builds the step spec and mesh; no data is read and no parameter is made."""
  config_lib.validate(config)
  mesh = sharding.make_mesh(sharding.local_devices(config.train.num_devices))
  sharding.check_batch_divisible(config.train.batch_size, mesh.size)
  data_shape = config_lib.data_shape(config.data)
  return Experiment(
    config,
    step_spec(config, data_shape),
    mesh,
    data_shape,
    init_key=rng.run_key(config.seed, "init"),
    step_key=rng.run_key(config.seed, "train"),
    figure_key=rng.run_key(config.seed, "figures"),
  )


def initial_state(experiment: Experiment, example_batch: np.ndarray) -> train_state.TrainState:
  """Fresh parameters, replicated over the mesh."""
  spec = experiment.spec
  create = functools.partial(
    train_state.create,
    autoencoder=spec.autoencoder,
    discriminator=spec.discriminator,
    ae_tx=spec.ae_tx,
    disc_tx=spec.disc_tx,
    latent_dim=spec.latent_dim,
  )
  return jax.jit(create, out_shardings=sharding.replicated(experiment.mesh))(
    experiment.init_key, example_batch=example_batch
  )


def restore_or_init(experiment: Experiment, checkpoints, example_batch: np.ndarray) -> train_state.TrainState:
  state = initial_state(experiment, example_batch)
  restored = checkpointing.restore_latest(checkpoints, state)
  if restored is None:
    logging.info("Starting from scratch.")
    return state
  logging.info("Resuming from the checkpoint at step %d.", int(restored.step))
  return restored


def restore(config: ml_collections.ConfigDict, workdir: str) -> tuple:
  """(experiment, state) for the latest checkpoint in ``workdir``, or an InputError when there is none."""
  experiment = build(config)
  checkpoints = checkpointing.manager(workdir, config.train.max_checkpoints)
  example = np.zeros((config.train.batch_size, *experiment.data_shape), np.float32)
  state = checkpointing.restore_latest(checkpoints, initial_state(experiment, example))
  checkpoints.close()
  if state is None:
    raise InputError(f"--workdir={workdir!r} holds no checkpoint; train first with --mode=train")
  return experiment, state
