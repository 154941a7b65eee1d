"""A config turned into objects: the model, the step spec, the mesh and the run's keys; fresh and restored states.

Training, evaluation, sampling and ``pretrained`` all start here, so none of them imports the training loop.
"""

import dataclasses
import functools

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from dae_jax import checkpointing, config_lib, metrics_io, models, objectives, rng, sharding, storage, train_state
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
  autoencoder, discriminator = models.build(config.model, data_shape, objective, jnp.dtype(config.train.compute_dtype))
  optim = config.optim

  def adam(learning_rate):
    return optax.adam(learning_rate, b1=optim.b1, b2=optim.b2)

  return StepSpec(
    autoencoder=autoencoder,
    ae_tx=adam(optim.learning_rate),
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
    disc_tx=adam(optim.disc_learning_rate) if discriminator else None,
    adversarial_phases=objective.adversarial and config.loss.adversarial_scheme == "phases",
    disc_steps=config.train.disc_steps,
    disc_gradient_penalty=config.loss.disc_gradient_penalty,
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
    gen_tx=spec.ae_tx if spec.adversarial_phases else None,
  )
  return jax.jit(create, out_shardings=sharding.replicated(experiment.mesh))(
    experiment.init_key, example_batch=example_batch
  )


# What the saved arrays are: their shapes and the functions they compute. Everything else (steps, intervals,
# chain settings, optimiser, noise, loss weights, data source, seed) may change between the runs of one workdir.
_ALWAYS_FITTING = ("model.objective", "model.architecture", "model.latent_dim", "data.image_size", "data.channels")
_BY_ARCHITECTURE = {"conv": ("model.widths", "model.code_batchnorm"), "mlp": ("model.mlp_hidden",)}
# Keys added after runs were recorded without them, with the value such a run had.
_BEFORE_THE_KEY = {"model.code_batchnorm": False}
# The discriminator's layers and slope; its dropout is a training regulariser, like the learning rate.
# The scheme decides whether the state holds the encoder's second optimiser state.
_ADVERSARIAL = ("model.disc_hidden", "model.leaky_relu_slope", "loss.adversarial_scheme")


def _lookup(config, dotted: str):
  group, name = dotted.split(".")
  value = config.get(group, {}).get(name)
  return tuple(value) if isinstance(value, list | tuple) else value


def fitting_keys(config: ml_collections.ConfigDict) -> tuple:
  """The keys on which a config must agree with the run that wrote a checkpoint for it to restore that run."""
  keys = _ALWAYS_FITTING + _BY_ARCHITECTURE.get(_lookup(config, "model.architecture"), ())
  objective = objectives.OBJECTIVES.get(_lookup(config, "model.objective"))
  return keys + (_ADVERSARIAL if objective and objective.adversarial else ())


def config_differences(given: ml_collections.ConfigDict, recorded: ml_collections.ConfigDict) -> list[str]:
  """``"key: recorded in the workdir, given given"`` for each fitting key that differs. Keys of a part that only
  one of the two has (a DAAE's discriminator against a DVAE) follow from a difference already named; a key the
  recorded config lacks (written before the key existed) is compared with the value such runs had, when it is in
  ``_BEFORE_THE_KEY``, and not compared otherwise."""
  shared = [key for key in fitting_keys(given) if key in fitting_keys(recorded)]
  differences = []
  for key in shared:
    old, new = _lookup(recorded, key), _lookup(given, key)
    old = _BEFORE_THE_KEY.get(key) if old is None else old
    if old is not None and old != new:
      differences.append(f"{key}: {old} in the workdir, {new} given")
  return differences


def check_fits_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """InputError naming every fitting key on which ``config`` differs from the workdir's ``config.json``."""
  if not (storage.path(workdir) / metrics_io.CONFIG_FILE).exists():
    return
  differences = config_differences(config, metrics_io.read_config(workdir))
  if differences:
    raise InputError(
      f"--config does not match the run in {workdir}: {'; '.join(differences)} "
      "(give the run's own config, or start another workdir)"
    )


def restore_or_init(experiment: Experiment, checkpoints, example_batch: np.ndarray) -> train_state.TrainState:
  """The newest checkpoint that restores (damaged newer ones are moved aside), else fresh parameters. A config
  that does not fit the workdir's run is refused before any checkpoint is read."""
  if checkpoints.all_steps():
    check_fits_workdir(experiment.config, str(checkpoints.directory.parent))
  state = initial_state(experiment, example_batch)
  restored = checkpointing.restore_latest(checkpoints, state)
  if restored is None:
    logging.info("Starting from scratch.")
    return state
  logging.info("Resuming from the checkpoint at step %d.", int(restored.step))
  return restored


def restore(config: ml_collections.ConfigDict, workdir: str) -> tuple:
  """(experiment, state) for the newest checkpoint in ``workdir`` that restores, read-only: damaged newer ones
  are skipped with a warning, never moved. InputError when there is none or ``config`` does not fit the run."""
  experiment = build(config)
  check_fits_workdir(config, workdir)
  checkpoints = checkpointing.manager(workdir, config.train.max_checkpoints, read_only=True)
  example = np.zeros((config.train.batch_size, *experiment.data_shape), np.float32)
  try:
    state = checkpointing.restore_latest(checkpoints, initial_state(experiment, example), read_only=True)
  finally:
    checkpoints.close()
  if state is None:
    raise InputError(f"--workdir={workdir!r} holds no checkpoint; train first with --mode=train")
  return experiment, state
