"""Using a trained workdir: restore its latest checkpoint, get ``sample_chain``, write the paper's figures.

sample_chain, params = pretrained.load_sampler(workdir)
trajectory = sample_chain(params, key, x0, n)        # [n + 1, *x0.shape]
"""

from collections.abc import Callable

import jax
import ml_collections

from dae_jax import chains, experiment, figures, metrics_io, sampling, storage
from dae_jax.errors import InputError


def load_sampler(
  workdir: str, spec: sampling.ChainSpec | None = None, config: ml_collections.ConfigDict | None = None
) -> tuple[Callable, dict]:
  """``(sample_chain, params)`` from the newest checkpoint in ``workdir`` that restores (damaged newer ones are
  skipped, never moved), built from the run's ``config.json`` unless ``config`` is given; a given ``config`` that
  changes the architecture or objective is an InputError naming the differing keys."""
  config = config or _recorded_config(workdir)
  run, state = experiment.restore(config, workdir)
  spec = spec or sampling.spec_from_config(config.chain)
  sample_chain = sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim, spec)
  return sample_chain, state.autoencoder_variables()


def _recorded_config(workdir: str) -> ml_collections.ConfigDict:
  if not (storage.path(workdir) / metrics_io.CONFIG_FILE).exists():
    raise InputError(f"workdir {workdir!r} holds no {metrics_io.CONFIG_FILE}; give the run's directory or a config")
  return metrics_io.read_config(workdir)


def write_samples(config: ml_collections.ConfigDict, workdir: str) -> str:
  """The paper's three figures and their raw trajectories (``trajectories.npz``) in ``<workdir>/samples``."""
  run, state = experiment.restore(config, workdir)
  trajectories = chains.run(
    run.spec.autoencoder,
    state.autoencoder_variables(),
    jax.random.fold_in(run.figure_key, int(state.step)),
    chains.paper_chains(config.chain),
    config.chain.num_samples,
    run.data_shape,
    run.spec.latent_dim,
    config.chain.batchnorm,
  )
  directory = storage.path(workdir) / "samples"
  figures.write_pngs(trajectories, directory)
  figures.write_npz(trajectories, directory / "trajectories.npz")
  return str(directory)
