"""The training loop: the one place with side effects (data, checkpoints, metrics, figures)."""

import dataclasses
import functools
import math
import os

from absl import logging
import jax
import ml_collections
import numpy as np

from dae_jax import (checkpointing, config_lib, data, distributed, figures, metrics_io, sharding, train_state,
                     train_step)
from dae_jax.data import loader
from dae_jax.errors import TrainingDiverged


@dataclasses.dataclass
class Run:
  """What a run is made of once the config has been turned into objects."""

  config: ml_collections.ConfigDict
  spec: train_step.StepSpec
  mesh: jax.sharding.Mesh
  data_shape: tuple
  init_key: jax.Array
  step_key: jax.Array
  figure_key: jax.Array


def prepare_model(config: ml_collections.ConfigDict) -> Run:
  """Validates the config and builds the step spec and mesh; no data is read and no parameter is made."""
  config_lib.validate(config)
  mesh = sharding.make_mesh(sharding.local_devices(config.train.num_devices))
  config_lib.check_batch_divisible(config.train.batch_size, mesh.size)
  data_shape = config_lib.data_shape(config.data)
  init_key, step_key, figure_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  return Run(config, train_step.spec_from_config(config, data_shape), mesh, data_shape, init_key, step_key,
             figure_key)


def initial_state(run: Run, example_batch: np.ndarray) -> train_state.TrainState:
  """Fresh parameters, replicated over the mesh."""
  spec = run.spec
  create = functools.partial(train_state.create, autoencoder=spec.autoencoder, discriminator=spec.discriminator,
                             ae_tx=spec.ae_tx, disc_tx=spec.disc_tx, latent_dim=spec.latent_dim)
  state = jax.jit(create, out_shardings=sharding.replicated(run.mesh))(run.init_key,
                                                                       example_batch=example_batch)
  return state


def restore_or_init(run: Run, checkpoints, example_batch: np.ndarray) -> train_state.TrainState:
  state = initial_state(run, example_batch)
  restored = checkpointing.restore_latest(checkpoints, state)
  if restored is None:
    logging.info("Starting from scratch.")
    return state
  logging.info("Resuming from the checkpoint at step %d.", int(restored.step))
  return restored


def write_figures(run: Run, state, workdir: str, writer) -> None:
  """Every process runs its share of the chains; process 0 (the one with a ``writer``) writes the pictures."""
  step = int(state.step)
  trajectories = figures.paper_chains(run.spec.autoencoder, state.autoencoder_variables(),
                                      jax.random.fold_in(run.figure_key, step), run.config.chain, run.data_shape,
                                      run.spec.latent_dim, mesh=run.mesh)
  if writer is None:
    return
  directory = os.path.join(workdir, "figures")
  grids = figures.write_pngs(trajectories, directory)
  figures.write_pngs(trajectories, directory, suffix=f"_step{step:07d}")
  writer.images(step, grids)
  logging.info("Wrote figures for step %d to %s.", step, directory)


def step_from_inputs(state, inputs, key, *, spec: train_step.StepSpec, flip: bool):
  """The train step on what a feeder sent: pixels are gathered/converted (and flipped) on the device."""
  batch = loader.batch_pixels(inputs)
  if flip:
    batch = loader.random_flip(jax.random.fold_in(jax.random.fold_in(key, state.step), 1), batch)
  return train_step.train_step(state, batch, key, spec=spec)


def _check_finite(step: int, metrics: dict) -> None:
  bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
  if bad:
    raise TrainingDiverged(f"non-finite loss at step {step}: {bad}; lower optim.learning_rate or check the data")


def _is_due(step: int, every: int, last: int) -> bool:
  return step % every == 0 or step == last


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> train_state.TrainState:
  """Trains (resuming from ``workdir`` if it holds a checkpoint) and writes checkpoints, metrics, figures."""
  config_lib.validate(config)
  data.check_available(config.data)
  run = prepare_model(config)
  images = data.load_train_images(config.data)
  train = config.train
  checkpoints = checkpointing.manager(workdir, train.max_checkpoints)
  state = restore_or_init(run, checkpoints, loader.batch_at(images, config.seed, 0, train.batch_size))
  writer = None
  if distributed.is_main_process():
    metrics_io.write_config(workdir, config)
    writer = metrics_io.MetricsWriter(workdir)
  feeder = loader.make_feeder(images, config.seed, train.batch_size, run.mesh, config.data.device_resident)
  step_fn = sharding.jit_train_step(functools.partial(step_from_inputs, spec=run.spec, flip=config.data.flip),
                                    run.mesh, input_sharding=feeder.input_sharding)
  start = int(state.step)
  progress = metrics_io.Progress(start, train.num_steps)
  for step in range(start, train.num_steps):
    state, metrics = step_fn(state, feeder(step), run.step_key)
    done = step + 1
    log_due = _is_due(done, train.log_every_steps, train.num_steps)
    save_due = _is_due(done, train.checkpoint_every_steps, train.num_steps)
    if log_due or save_due:  # Checked before every save too: a diverged state is never checkpointed.
      metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
      _check_finite(done, metrics)
    if log_due:
      rates = progress.report(done)
      if writer:
        writer.scalars(done, {**metrics, **rates})
      metrics_io.log_line(done, train.num_steps, metrics, rates)
    if save_due:
      checkpointing.save(checkpoints, state)
    if _is_due(done, train.figures_every_steps, train.num_steps):
      write_figures(run, state, workdir, writer)
  if start >= train.num_steps:
    logging.info("Already trained to step %d; writing figures only.", start)
    write_figures(run, state, workdir, writer)
  checkpoints.wait_until_finished()
  checkpoints.close()
  if writer:
    writer.close()
  return state
