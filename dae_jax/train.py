"""The training loop: the one place with side effects (data, checkpoints, metrics, figures).

Only ``main`` imports it; everything it builds on is importable without it (``experiment``, ``train_step``).
"""

import contextlib
import functools
import math

from absl import logging
import jax
import ml_collections

from dae_jax import (
  chains,
  checkpointing,
  config_lib,
  data,
  distributed,
  experiment,
  figures,
  metrics_io,
  preemption,
  sharding,
  storage,
  train_state,
  workdir_lock,
)
from dae_jax import train_step as train_step_lib
from dae_jax.data import loader
from dae_jax.errors import TrainingDiverged
from dae_jax.experiment import Experiment


def write_figures(run: Experiment, state, workdir: str, writer) -> None:
  """Every process runs its share of the chains; process 0 (the one with a ``writer``) writes the pictures."""
  step = int(state.step)
  trajectories = chains.run(
    run.spec.autoencoder,
    state.autoencoder_variables(),
    jax.random.fold_in(run.figure_key, step),
    chains.paper_chains(run.config.chain),
    run.config.chain.num_samples,
    run.data_shape,
    run.spec.latent_dim,
    run.config.chain.batchnorm,
    mesh=run.mesh,
  )
  if writer is None:
    return
  directory = storage.path(workdir) / "figures"
  grids = figures.write_pngs(trajectories, directory)
  figures.write_pngs(trajectories, directory, suffix=f"_step{step:07d}")
  writer.images(step, grids)
  logging.info("Wrote figures for step %d to %s.", step, directory)


def step_from_inputs(state, inputs, key, *, spec: train_step_lib.StepSpec):
  """The train step on what a feeder sent: pixels are gathered and converted on the device."""
  return train_step_lib.train_step(state, loader.batch_pixels(inputs), key, spec=spec)


def _log_devices(run: Experiment, batch_size: int) -> None:
  logging.info("Training on %s.", sharding.describe(run.mesh, batch_size))
  warning = sharding.unused_accelerator_warning(jax.default_backend(), sharding.accelerators_present())
  if warning:
    logging.warning("%s.", warning)


def _check_finite(step: int, metrics: dict) -> None:
  bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
  if bad:
    raise TrainingDiverged(f"non-finite loss at step {step}: {bad}; lower optim.learning_rate or check the data")


def _check_state_finite(step: int, state) -> None:
  """The state about to be saved, not the loss computed before the update: a diverged state is never saved."""
  if not bool(train_state.all_finite(state)):
    raise TrainingDiverged(
      f"the parameters became non-finite at step {step}; lower optim.learning_rate or check the data "
      "(the last checkpoint is the latest good one)"
    )


def _is_due(step: int, every: int, last: int) -> bool:
  return step % every == 0 or step == last


def _log_and_save(run: Experiment, state, metrics, done: int, outputs, stopping: bool) -> None:
  """Metrics at log steps; a checkpoint at save steps and where the run stops. Both check finiteness first."""
  checkpoints, writer, progress = outputs
  train = run.config.train
  log_due = _is_due(done, train.log_every_steps, train.num_steps)
  save_due = stopping or _is_due(done, train.checkpoint_every_steps, train.num_steps)
  if not (log_due or save_due):
    return
  metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
  _check_finite(done, metrics)
  if log_due:
    rates = progress.report(done)
    if writer:  # Process 0 only: one progress line per run, not one per process.
      writer.scalars(done, {**metrics, **rates})
      metrics_io.log_line(done, train.num_steps, metrics, rates)
  if save_due:
    _check_state_finite(done, state)
    checkpointing.save(checkpoints, state)


def _loop(run: Experiment, state, images, workdir: str, checkpoints, writer, stop: preemption.StopRequest):
  train = run.config.train
  feeder = loader.make_feeder(images, run.config.seed, train.batch_size, run.mesh, run.config.data.device_resident)
  step_fn = sharding.jit_train_step(
    functools.partial(step_from_inputs, spec=run.spec), run.mesh, input_sharding=feeder.input_sharding
  )
  start = int(state.step)
  outputs = (checkpoints, writer, metrics_io.Progress(start, train.num_steps))
  for step in range(start, train.num_steps):
    state, metrics = step_fn(state, feeder(step), run.step_key)
    done, stopping = step + 1, stop.requested(step + 1)
    _log_and_save(run, state, metrics, done, outputs, stopping)
    if stopping:
      logging.info("Stopped at step %d on %s; the checkpoint there resumes the run.", done, stop.reason)
      return state
    if _is_due(done, train.figures_every_steps, train.num_steps):
      write_figures(run, state, workdir, writer)
  if start >= train.num_steps:
    logging.info("Already trained to step %d; writing figures only.", start)
    write_figures(run, state, workdir, writer)
  return state


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains (resuming from ``workdir`` if it holds a checkpoint) and writes checkpoints, metrics, figures.

  SIGTERM, SIGINT or SIGUSR1 stop it after the current step with a checkpoint there (see ``preemption``).
  """
  config_lib.validate(config)
  data.check_available(config.data)  # Before JAX starts its backends: missing data fails in a second.
  main = distributed.is_main_process()
  created = main and not storage.path(workdir).exists()
  try:
    return _train_holding_the_workdir(config, workdir, main)
  except BaseException:
    if created:
      _remove_if_untouched(workdir)
    raise


def _remove_if_untouched(workdir: str) -> None:
  """A run that fails before it saved or logged anything leaves no workdir behind, if it made that workdir."""
  root = storage.path(workdir)
  checkpoints = root / "checkpoints"
  saved = checkpoints.exists() and any(checkpoints.iterdir())
  logged = (root / metrics_io.METRICS_FILE).exists() and (root / metrics_io.METRICS_FILE).read_text().strip()
  if root.exists() and not saved and not logged:
    root.rmtree()


def _train_holding_the_workdir(config: ml_collections.ConfigDict, workdir: str, main: bool):
  # Process 0 holds the workdir for the whole job; the others share its outputs.
  lock = workdir_lock.WorkdirLock(workdir) if main else contextlib.nullcontext()
  with lock, preemption.StopRequest() as stop:  # A signal during the setup stops the run after its first step.
    run = experiment.build(config)
    images = data.load_train_images(config.data)
    checkpoints = checkpointing.manager(workdir, config.train.max_checkpoints)
    try:
      return _run(run, images, workdir, checkpoints, stop)
    finally:
      # Also when the run fails: a save in flight finishes before the error is reported, so the error stays one
      # line and no temporary checkpoint folder is left behind.
      checkpoints.wait_until_finished()
      checkpoints.close()


def _open_outputs(run: Experiment, workdir: str, start: int) -> metrics_io.MetricsWriter:
  """Process 0's side of a (re)start: what trains, leftovers of a killed run, config.json, the metrics writer."""
  _log_devices(run, run.config.train.batch_size)
  for folder in ("", "figures", "samples", "eval"):
    for name in storage.remove_stale_temporaries(storage.path(workdir) / folder):
      logging.info("Removed %s, left by a run killed while writing it.", name)
  metrics_io.write_config(workdir, run.config)
  # This run logs the steps after its checkpoint again: the earlier lines for them go.
  return metrics_io.MetricsWriter(workdir, drop=lambda r: r["step"] > start and not metrics_io.is_eval_record(r))


def _run(run: Experiment, images, workdir: str, checkpoints, stop: preemption.StopRequest):
  config = run.config
  writer = None
  try:
    example = loader.batch_at(images, config.seed, 0, config.train.batch_size)
    state = experiment.restore_or_init(run, checkpoints, example)
    if distributed.is_main_process():
      writer = _open_outputs(run, workdir, int(state.step))
    return _loop(run, state, images, workdir, checkpoints, writer, stop)
  finally:
    if writer:
      writer.close()
