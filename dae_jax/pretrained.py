"""Using a trained workdir: restore its latest checkpoint, get ``sample_chain``, write the paper's figures.

  sample_chain, params = pretrained.load_sampler(workdir)
  trajectory = sample_chain(params, key, x0, n)        # [n + 1, *x0.shape]
"""

import os
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections

from dae_jax import checkpointing, figures, metrics_io, sampling, train
from dae_jax.errors import InputError


def restore(config: ml_collections.ConfigDict, workdir: str):
  """(run, state) for the latest checkpoint in ``workdir``, or an InputError when there is none."""
  run = train.prepare_model(config)
  checkpoints = checkpointing.manager(workdir, config.train.max_checkpoints)
  example = jnp.zeros((config.train.batch_size, *run.data_shape), jnp.float32)
  state = checkpointing.restore_latest(checkpoints, train.initial_state(run, example))
  checkpoints.close()
  if state is None:
    raise InputError(f"--workdir={workdir!r} holds no checkpoint; train first with --mode=train")
  return run, state


def load_sampler(workdir: str, spec: Optional[sampling.ChainSpec] = None,
                 config: Optional[ml_collections.ConfigDict] = None) -> tuple[Callable, dict]:
  """``(sample_chain, params)`` from the run in ``workdir`` (its ``config.json`` unless ``config`` is given)."""
  config = config or metrics_io.read_config(workdir)
  run, state = restore(config, workdir)
  spec = spec or sampling.spec_from_config(config.chain)
  sample_chain = sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim, spec)
  return sample_chain, state.autoencoder_variables()


def write_samples(config: ml_collections.ConfigDict, workdir: str) -> str:
  """The paper's three figures and their raw trajectories (``trajectories.npz``) in ``<workdir>/samples``."""
  run, state = restore(config, workdir)
  trajectories = figures.paper_chains(run.spec.autoencoder, state.autoencoder_variables(),
                                      jax.random.fold_in(run.figure_key, int(state.step)), config.chain,
                                      run.data_shape, run.spec.latent_dim)
  directory = os.path.join(workdir, "samples")
  figures.write_pngs(trajectories, directory)
  figures.write_npz(trajectories, os.path.join(directory, "trajectories.npz"))
  return directory
