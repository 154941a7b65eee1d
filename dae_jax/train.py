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
  multi_step,
  preemption,
  rng,
  sampling,
  sharding,
  storage,
  train_state,
  workdir_lock,
)
from dae_jax import train_step as train_step_lib
from dae_jax.data import loader
from dae_jax.errors import TrainingDiverged
from dae_jax.eval import evaluate, prior_match
from dae_jax.experiment import Experiment


def write_figures(run: Experiment, state, images, workdir: str, writer) -> None:
  """Every process runs its share of the chains and the reconstructions of the first training ``images``; process
  0 (the one with a ``writer``) writes the pictures."""
  step = int(state.step)
  paper = chains.paper_chains(run.config.chain)
  trajectories = chains.run(
    run.spec.autoencoder,
    state.autoencoder_variables(),
    jax.random.fold_in(run.figure_key, step),
    paper,
    run.config.chain.num_samples,
    run.data_shape,
    run.spec.latent_dim,
    run.config.chain.batchnorm,
    mesh=run.mesh,
  )
  rows = _reconstructions(run, state, images)
  if writer is None:
    return
  directory = storage.path(workdir) / "figures"
  info, suffixes = figures.FigureInfo.of_run(run.config, step), ("", f"_step{step:07d}")
  shown = figures.write_pngs(trajectories, paper, directory, info, suffixes)
  shown["reconstructions"] = figures.write_reconstructions(rows, run.config.noise.sigma, directory, info, suffixes)
  writer.images(step, shown)
  logging.info("Wrote figures for step %d to %s.", step, directory)


def _reconstructions(run: Experiment, state, images):
  """x, x + noise and R(x + noise) for the first training images, with the same noise at every step."""
  config = run.config
  return chains.reconstructions(
    run.spec.autoencoder,
    state.autoencoder_variables(),
    rng.named(run.figure_key, "reconstructions"),
    loader.to_pixels(images[: figures.RECONSTRUCTION_IMAGES]),
    config.noise.sigma,
    clip=config.noise.clip,
    spec=sampling.spec_from_config(config.chain),
    latent_dim=run.spec.latent_dim,
    mesh=run.mesh,
  )


def step_from_inputs(state, inputs, key, *, spec: train_step_lib.StepSpec):
  """The train step on what a feeder sent: pixels are gathered and converted on the device."""
  return train_step_lib.train_step(state, loader.batch_pixels(inputs), key, spec=spec)


def steps_from_inputs(state, inputs, key, *, spec: train_step_lib.StepSpec):
  """k train steps in one ``multi_step.scan_steps`` loop on what ``feeder.steps`` sent: k stacked batches, or the
  dataset and k stacked index sets (each step gathers only its own batch, so the k batches are never all in memory
  as floats)."""
  dataset, stacked = inputs if isinstance(inputs, tuple) else (None, inputs)

  def one_step(state, part, key):
    return step_from_inputs(state, part if dataset is None else (dataset, part), key, spec=spec)

  return multi_step.scan_steps(one_step)(state, stacked, key)


def looped_step_from_inputs(state, inputs, key, *, spec: train_step_lib.StepSpec):
  """One train step on what ``feeder(step)`` sent, run as a loop of one step: compiled as the body that a dispatch
  of k steps loops over (``multi_step`` says why), so no bit of a run depends on train.steps_per_call."""
  dataset, batch = inputs if isinstance(inputs, tuple) else (None, inputs)
  stacked = batch[None] if dataset is None else (dataset, batch[None])
  return steps_from_inputs(state, stacked, key, spec=spec)


def _step_functions(run: Experiment, feeder) -> dict:
  """The jitted dispatches by how many steps each runs: 1, and k = train.steps_per_call when k > 1. Each compiles
  when first called, so a run that never needs a single step never compiles one."""
  functions = {
    1: sharding.jit_train_step(
      functools.partial(looped_step_from_inputs, spec=run.spec), run.mesh, input_sharding=feeder.input_sharding
    )
  }
  k = run.config.train.steps_per_call
  if k > 1:
    functions[k] = sharding.jit_train_step(
      functools.partial(steps_from_inputs, spec=run.spec), run.mesh, input_sharding=feeder.stacked_sharding
    )
  return functions


class _Trace:
  """A ``jax.profiler`` trace of ``num_steps`` steps (0: none) from the end of the first dispatch, which
  compiles, into ``<workdir>/profile/`` (``plugins/profile/<run>/*.xplane.pb`` for TensorBoard's profile plugin
  or XProf, and ``*.trace.json.gz`` for ui.perfetto.dev). The device is waited for at both ends only."""

  def __init__(self, workdir: str, num_steps: int):
    self._directory = str(storage.path(workdir) / "profile")
    self._num_steps = num_steps
    self._begin = None  # The step after which the trace started.

  def __enter__(self):
    return self

  def after_dispatch(self, done: int, state) -> None:
    if not self._num_steps:
      return
    starting = self._begin is None
    if starting or done >= self._begin + self._num_steps:
      jax.block_until_ready(state)  # So the trace holds exactly the dispatches between its two ends.
      if starting:
        jax.profiler.start_trace(self._directory, create_perfetto_trace=True)
        self._begin = done
      else:
        self._stop(done)

  def _stop(self, done) -> None:
    jax.profiler.stop_trace()
    self._num_steps = 0
    logging.info("Wrote a profile of steps %d-%s to %s.", self._begin + 1, done, self._directory)

  def __exit__(self, *exc_info):
    if self._num_steps and self._begin is not None:  # The run ended before the traced steps did.
      self._stop("its end")


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
  checkpoints, writer, progress, prior_monitor = outputs
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
      writer.scalars(done, {**metrics, **rates, **(prior_monitor(state) if prior_monitor else {})})
      metrics_io.log_line(done, train.num_steps, metrics, rates)
  if save_due:
    _check_state_finite(done, state)
    checkpointing.save(checkpoints, state)


def _prior_monitor(run: Experiment):
  """``state -> scalars``: the prior match of a fixed held-out batch (fixed noise too), for objectives with a
  prior (DVAE, DAAE); None for the others."""
  objective = run.spec.objective
  if not (objective.variational or objective.adversarial):
    return None
  images = loader.held_out_sample(evaluate.held_out(run.config)[0], prior_match.TRAINING_SAMPLES, run.config.seed)
  if len(images) < 2:
    return None
  key, probe_steps = rng.named(run.figure_key, "prior_match"), run.config.eval.probe_steps
  return functools.partial(prior_match.training_scalars, run.spec, key=key, images=images, probe_steps=probe_steps)


def _loop(run: Experiment, state, images, workdir: str, checkpoints, writer, stop: preemption.StopRequest):
  train = run.config.train
  feeder = loader.make_feeder(images, run.config.seed, train.batch_size, run.mesh, run.config.data.device_resident)
  step_fns = _step_functions(run, feeder)
  start = int(state.step)
  monitor = _prior_monitor(run) if writer else None
  outputs = (checkpoints, writer, metrics_io.Progress(start, train.num_steps), monitor)
  dispatches = multi_step.calls(start, train.num_steps, train.steps_per_call)
  with _Trace(workdir, train.profile_steps) as trace:
    # n counts dispatches: JAX's multi-process stop agreement needs the number it is given to grow by one per call.
    for n, (first, size) in enumerate(dispatches, start + 1):
      inputs = feeder(first) if size == 1 else feeder.steps(first, size)
      state, metrics = step_fns[size](state, inputs, run.step_key)
      done, stopping = first + size, stop.requested(n)
      trace.after_dispatch(done, state)
      _log_and_save(run, state, metrics, done, outputs, stopping)
      if stopping:
        logging.info("Stopped at step %d on %s; the checkpoint there resumes the run.", done, stop.reason)
        return state
      if _is_due(done, train.figures_every_steps, train.num_steps):
        write_figures(run, state, images, workdir, writer)
  if start >= train.num_steps:
    logging.info("Already trained to step %d; writing figures only.", start)
    write_figures(run, state, images, workdir, writer)
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
