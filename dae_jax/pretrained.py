"""Using a trained workdir: restore its latest checkpoint, get ``sample_chain``, write the paper's figures.

sample_chain, params = pretrained.load_sampler(workdir)
trajectory = sample_chain(params, key, x0, n)        # [n + 1, *x0.shape]

With ``chain.num_steps=-1`` both take the chain ``--mode=eval`` recommended (``<workdir>/eval/summary.json``): its
ChainSpec, and its length as the default ``n``; ``recommended_chain(workdir)`` also says where it starts.
"""

from collections.abc import Callable

import jax
import ml_collections

from dae_jax import chains, config_lib, experiment, figures, metrics_io, sampling, storage
from dae_jax.errors import InputError
from dae_jax.eval import recommend

# The name the recommended chain's figure and trajectory are written under by --mode=sample.
RECOMMENDED = "recommended"


def load_sampler(
  workdir: str, spec: sampling.ChainSpec | None = None, config: ml_collections.ConfigDict | None = None
) -> tuple[Callable, dict]:
  """``(sample_chain, params)`` from the newest checkpoint in ``workdir`` that restores (damaged newer ones are
  skipped, never moved), built from the run's ``config.json`` unless ``config`` is given; a given ``config`` that
  changes the architecture or objective is an InputError naming the differing keys."""
  config = config or _recorded_config(workdir)
  best = recommended_chain(workdir) if _from_eval(config) else None
  run, state = experiment.restore(config, workdir)
  spec = spec or (best.spec if best else sampling.spec_from_config(config.chain))
  sample_chain = sampling.make_sample_chain(run.spec.autoencoder, run.data_shape, run.spec.latent_dim, spec)
  if best is not None:
    sample_chain = _with_default_length(sample_chain, best.num_steps)
  return sample_chain, state.autoencoder_variables()


def recommended_chain(workdir: str) -> chains.Chain:
  """The chain ``--mode=eval`` recommended for this workdir: start, ChainSpec and length (``eval.recommend``).
  InputError naming the missing summary when eval has not run."""
  entry = recommend.read(workdir)
  return chains.Chain(entry["start"], entry["spec"], entry["num_steps"])


def _from_eval(config: ml_collections.ConfigDict) -> bool:
  return config.chain.num_steps == config_lib.CHAIN_STEPS_FROM_EVAL


def _with_default_length(sample_chain: Callable, num_steps: int) -> Callable:
  def sample_recommended(params, key: jax.Array, x0: jax.Array, n: int = num_steps) -> jax.Array:
    return sample_chain(params, key, x0, n)

  return sample_recommended


def _recorded_config(workdir: str) -> ml_collections.ConfigDict:
  if not (storage.path(workdir) / metrics_io.CONFIG_FILE).exists():
    raise InputError(f"workdir {workdir!r} holds no {metrics_io.CONFIG_FILE}; give the run's directory or a config")
  return metrics_io.read_config(workdir)


def sample_chains(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """What ``--mode=sample`` runs: the paper's three chains; with ``chain.num_steps=-1`` Figs. 1 and 3 at the
  recommended length, and the recommended chain itself as "recommended"."""
  if not _from_eval(config):
    return chains.paper_chains(config.chain)
  best = recommended_chain(workdir)
  chain_config = config.chain.copy_and_resolve_references()
  chain_config.num_steps = best.num_steps
  return {**chains.paper_chains(chain_config), RECOMMENDED: best}


def write_samples(config: ml_collections.ConfigDict, workdir: str) -> str:
  """The figures of ``sample_chains`` and their raw trajectories (``trajectories.npz``) in ``<workdir>/samples``."""
  to_run = sample_chains(config, workdir)  # Before the restore: a missing eval summary fails in a second.
  run, state = experiment.restore(config, workdir)
  trajectories = chains.run(
    run.spec.autoencoder,
    state.autoencoder_variables(),
    jax.random.fold_in(run.figure_key, int(state.step)),
    to_run,
    config.chain.num_samples,
    run.data_shape,
    run.spec.latent_dim,
    config.chain.batchnorm,
  )
  directory = storage.path(workdir) / "samples"
  figures.write_pngs(trajectories, to_run, directory, figures.FigureInfo.of_run(config, int(state.step)))
  figures.write_npz(trajectories, directory / "trajectories.npz")
  return str(directory)
