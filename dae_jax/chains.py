"""Named sets of chains, run on the devices: the paper's three figures and the evaluation's variants.

- fig1_from_noise: U(0, 1) noise, then x <- R(x) (Fig. 1).
- fig2_noise_injection: a long chain from noise that adds N(0, chain.noise_std^2) before each step (Fig. 2).
- fig3_from_prior: decoded prior samples d(z), z ~ N(0, I), then the chain. By default (``chain.fig3="caption"``)
  it adds N(0, chain.noise_std^2) before each encoding, as Fig. 3's caption says ("as in Fig. 2"); with
  ``chain.fig3="eq11"`` it is Eq. 11's noise-free x <- R(x). Fig. 1's length either way.

Chains that start from the same kind of point start from the same points, so their rows can be compared.
Arrays only: ``figures`` turns them into pictures.
"""

import dataclasses
import functools

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np

from dae_jax import config_lib, corruption, rng, sampling, sharding
from dae_jax.errors import InputError

STARTS = ("noise", "prior")
# Fig. 3's two readings: its caption (noise before each encoding, as in Fig. 2) or Eq. 11 (no noise).
FIG3_NOISE = config_lib.FIG3_READINGS


@dataclasses.dataclass(frozen=True)
class Chain:
  start: str  # One of STARTS: U(0, 1) noise, or decoded prior samples d(z).
  spec: sampling.ChainSpec
  num_steps: int


def fig3_reading(chain_config) -> str:
  """``chain.fig3``; configs written before the key existed get the caption's reading."""
  reading = chain_config.get("fig3", "caption")
  if reading not in FIG3_NOISE:
    raise InputError(f"chain.fig3={reading!r} is not allowed; choose one of {', '.join(FIG3_NOISE)}")
  return reading


def chain_length(chain_config) -> int:
  """``chain.num_steps``, or the paper's 20 for -1 ("from the eval summary"), which only ``--mode=sample`` and
  ``pretrained.load_sampler`` resolve: training figures and eval run before there is a summary to read."""
  if chain_config.num_steps == config_lib.CHAIN_STEPS_FROM_EVAL:
    return config_lib.PAPER_CHAIN_STEPS
  return chain_config.num_steps


def _from_prior(chain_config, reading: str) -> Chain:
  noise_std = chain_config.noise_std if reading == "caption" else 0.0
  return Chain("prior", sampling.spec_from_config(chain_config, noise_std=noise_std), chain_length(chain_config))


def paper_chains(chain_config) -> dict:
  plain = sampling.spec_from_config(chain_config)
  injected = sampling.spec_from_config(chain_config, noise_std=chain_config.noise_std)
  return {
    "fig1_from_noise": Chain("noise", plain, chain_length(chain_config)),
    "fig2_noise_injection": Chain("noise", injected, chain_config.long_num_steps),
    "fig3_from_prior": _from_prior(chain_config, fig3_reading(chain_config)),
  }


def eval_chains(chain_config, eval_config) -> dict:
  """The paper's chains under the names ``--mode=eval`` reports, and Nguyen et al.'s transition beside them.

  Fig. 3 is measured in both readings whatever ``chain.fig3`` says: "from_prior" as its caption has it,
  "from_prior_eq11" as Eq. 11 writes it, so one evaluation shows what the injected noise changes.
  """
  paper = paper_chains(chain_config)
  nguyen = sampling.ChainSpec(
    step_size=eval_config.nguyen_step_size,
    step_noise_std=eval_config.nguyen_noise_std,
    batchnorm=chain_config.batchnorm,
  )
  return {
    "from_noise": paper["fig1_from_noise"],
    "noise_injection": paper["fig2_noise_injection"],
    "from_prior": _from_prior(chain_config, "caption"),
    "from_prior_eq11": _from_prior(chain_config, "eq11"),
    "nguyen": Chain("noise", nguyen, chain_config.long_num_steps),
  }


def starting_points(
  autoencoder, params, key: jax.Array, kinds, num_samples: int, data_shape, latent_dim: int, batchnorm: str
) -> dict:
  shape = (num_samples, *data_shape)
  points = {}
  if "noise" in kinds:
    points["noise"] = sampling.uniform_noise(rng.named(key, "start/noise"), shape)
  if "prior" in kinds:
    points["prior"] = sampling.decode_prior(
      autoencoder, params, rng.named(key, "start/prior"), num_samples, latent_dim, batchnorm
    )
  return points


def run(
  autoencoder,
  params,
  key: jax.Array,
  chains: dict,
  num_samples: int,
  data_shape,
  latent_dim: int,
  batchnorm: str = "batch",
  mesh=None,
) -> dict:
  """``{name: trajectory [steps + 1, num_samples, *data_shape]}`` as numpy on every process.

  With a ``mesh`` the chains are split over its devices along the sample axis (any number of processes).
  """
  if mesh is not None:
    params, key = sharding.replicate((params, key), mesh)
  starts = starting_points(
    autoencoder, params, key, {c.start for c in chains.values()}, num_samples, data_shape, latent_dim, batchnorm
  )
  trajectories = {}
  for name, chain in chains.items():
    x0 = starts[chain.start]
    if mesh is not None:
      x0 = sampling.shard_chains(x0, mesh)
    trajectory = sampling.compiled_chain(
      autoencoder, data_shape, latent_dim, chain.spec, params, rng.named(key, f"chain/{name}"), x0, chain.num_steps
    )
    trajectories[name] = np.asarray(multihost_utils.process_allgather(trajectory, tiled=True))
  return trajectories


@functools.partial(jax.jit, static_argnames=("autoencoder", "spec", "latent_dim", "clip"))
def _reconstructions(params, key, clean, sigma, *, autoencoder, spec, latent_dim, clip):
  noisy = corruption.gaussian(rng.named(key, "corrupt"), clean, sigma, clip=clip)
  rebuilt = sampling.reconstruct(autoencoder, params, noisy, rng.named(key, "posterior"), spec, latent_dim)
  return jnp.stack([clean, noisy, rebuilt])


def reconstructions(
  autoencoder, params, key: jax.Array, clean, sigma: float, *, clip: bool, spec, latent_dim: int, mesh=None
) -> np.ndarray:
  """[3, n, *shape] as numpy on every process: x, x + N(0, sigma^2) corrupted as training does, and R of that
  (``spec`` sets BatchNorm and the DVAE posterior sample). One ``key`` gives one noise, so the figures of
  successive training steps differ only by R."""
  clean = np.asarray(clean, np.float32)
  if mesh is not None:
    params, key, clean = sharding.replicate((params, key, clean), mesh)
  out = _reconstructions(
    params, key, clean, sigma, autoencoder=autoencoder, spec=spec, latent_dim=latent_dim, clip=clip
  )
  return np.asarray(multihost_utils.process_allgather(out, tiled=True))
