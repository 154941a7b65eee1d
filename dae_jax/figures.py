"""The paper's three chains (Figs. 1-3) from a trained autoencoder, as arrays and as PNG grids.

- fig1_from_noise: U(0, 1) noise, then x <- R(x) (Fig. 1), shown at steps 0, n/2, n (noise -> x10 -> x20).
- fig2_noise_injection: a long chain from noise that adds N(0, chain.noise_std^2) before each step (Fig. 2).
- fig3_from_prior: decoded prior samples d(z), z ~ N(0, I), then x <- R(x) (Eq. 11, Fig. 3).
"""

import os

import jax
from jax.experimental import multihost_utils
import numpy as np

from dae_jax import sampling, sharding, visualize

def paper_chains(autoencoder, params, key: jax.Array, chain_config, data_shape, latent_dim: int,
                 mesh=None) -> dict:
  """Trajectories [steps + 1, chain.num_samples, *data_shape] for each figure, as numpy arrays on every process.

  With a ``mesh`` the chains are split over its devices along the sample axis (any number of processes).
  """
  if mesh is not None:
    params, key = sharding.replicate((params, key), mesh)
  start_keys = jax.random.split(jax.random.fold_in(key, 0), 3)
  chain_keys = jax.random.split(jax.random.fold_in(key, 1), 3)
  shape = (chain_config.num_samples, *data_shape)
  plain = sampling.spec_from_config(chain_config)
  injected = sampling.spec_from_config(chain_config, noise_std=chain_config.noise_std)
  starts = {
      "fig1_from_noise": (sampling.uniform_noise(start_keys[0], shape), plain, chain_config.num_steps),
      "fig2_noise_injection": (sampling.uniform_noise(start_keys[1], shape), injected,
                               chain_config.long_num_steps),
      "fig3_from_prior": (sampling.decode_prior(autoencoder, params, start_keys[2], shape[0], latent_dim,
                                                chain_config.batchnorm), plain, chain_config.num_steps),
  }
  return run_chains(autoencoder, params, dict(zip(starts, chain_keys)), starts, data_shape, latent_dim, mesh)


def run_chains(autoencoder, params, keys: dict, chains: dict, data_shape, latent_dim: int, mesh=None) -> dict:
  """``{name: trajectory}`` as numpy on every process, for ``chains = {name: (x0, ChainSpec, n)}``."""
  trajectories = {}
  for name, (x0, spec, n) in chains.items():
    if mesh is not None:
      x0 = sampling.shard_chains(x0, mesh)
    trajectory = sampling.compiled_chain(autoencoder, data_shape, latent_dim, spec, params, keys[name], x0, n)
    trajectories[name] = np.asarray(multihost_utils.process_allgather(trajectory, tiled=True))
  return trajectories


def columns(name: str, num_steps: int) -> list:
  """Which chain steps a figure shows."""
  if name == "fig1_from_noise":
    return sorted({0, num_steps // 2, num_steps})
  count = 11 if name == "fig2_noise_injection" else 6
  return sorted({int(round(s)) for s in np.linspace(0, num_steps, count)})


def write_pngs(trajectories: dict, directory: str, suffix: str = "") -> dict:
  """Writes ``<name><suffix>.png`` grids; returns ``{name: grid}`` (uint8 [h, w, 3]) for TensorBoard."""
  grids = {}
  for name, trajectory in trajectories.items():
    grids[name] = visualize.chain_grid(trajectory, columns(name, trajectory.shape[0] - 1))
    visualize.save_png(os.path.join(directory, f"{name}{suffix}.png"), grids[name])
  return grids


def write_npz(trajectories: dict, path: str) -> None:
  """All trajectories in one ``.npz``, written atomically."""
  tmp = path + ".tmp.npz"
  np.savez_compressed(tmp, **trajectories)
  os.replace(tmp, path)
