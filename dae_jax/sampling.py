"""Sampling by iterating the reconstruction map R(x) = sigmoid(d(e(x))), which climbs the data density.

``make_sample_chain(autoencoder, data_shape, spec)`` returns ``sample_chain(params, key, x0, n)``: a pure,
jittable function (``n`` static) that runs n transitions in one ``jax.lax.scan`` on device and returns the
whole trajectory, shape [n + 1, *x0.shape], with x0 first. The transition is

  x_{t+1} = x_t + step_size * (R(x_t + N(0, noise_std^2)) - x_t) + N(0, step_noise_std^2),

which is the paper's x_{t+1} = R(x_t) for the defaults, its Fig. 2 chain with ``noise_std`` > 0, and the
Nguyen et al. (2017) transition with ``step_size`` < 1 and ``step_noise_std`` > 0.
"""

from collections.abc import Callable, Sequence
import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dae_jax import config_lib, models, sharding
from dae_jax.errors import InputError


@dataclasses.dataclass(frozen=True)
class ChainSpec:
  noise_std: float = 0.0
  step_size: float = 1.0
  step_noise_std: float = 0.0
  # "batch": BatchNorm normalises with the chain's own minibatch statistics, as the paper samples;
  # "running": with the running averages collected during training.
  batchnorm: str = "batch"
  # DVAE only: decode a posterior sample instead of the posterior mean.
  posterior_sample: bool = False

  def __post_init__(self):
    # Checked here, not at use: a bad spec would otherwise fail inside jit, or ("bogus" batchnorm) be taken as
    # "batch" in silence.
    if self.batchnorm not in config_lib.BATCHNORM_MODES:
      raise InputError(
        f"ChainSpec batchnorm={self.batchnorm!r} is not allowed; choose one of {', '.join(config_lib.BATCHNORM_MODES)}"
      )
    for name in ("noise_std", "step_noise_std", "step_size"):
      _check_number(name, getattr(self, name), allow_zero=name != "step_size")
    if not isinstance(self.posterior_sample, bool):
      raise InputError(f"ChainSpec posterior_sample={self.posterior_sample!r} is not allowed; it must be True or False")


def _check_number(name: str, value, *, allow_zero: bool) -> None:
  bound = ">= 0" if allow_zero else "> 0"
  is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
  if not (is_number and math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
    raise InputError(f"ChainSpec {name}={value!r} is not allowed; it must be a finite number {bound}")


def spec_from_config(chain_config, *, noise_std: float = 0.0) -> ChainSpec:
  return ChainSpec(
    noise_std=noise_std,
    step_size=chain_config.step_size,
    step_noise_std=chain_config.step_noise_std,
    batchnorm=chain_config.batchnorm,
    posterior_sample=chain_config.posterior_sample,
  )


def _decode_pixels(module, code, use_running_average):
  return jax.nn.sigmoid(module.decode(code, use_running_average))


def _reconstruct_pixels(module, x, eps, use_running_average, posterior_sample):
  mean, log_var = module.encode(x, use_running_average)
  code = models.reparameterise(mean, log_var, eps) if posterior_sample else mean
  return _decode_pixels(module, code, use_running_average)


def _apply(autoencoder: nn.Module, params, method: Callable, *args, batchnorm: str):
  """Runs ``method`` in inference mode; in "batch" mode the updated statistics are computed and dropped."""
  if batchnorm == "running":
    return autoencoder.apply(params, *args, True, method=method)
  out, _ = autoencoder.apply(params, *args, False, method=method, mutable=["batch_stats"])
  return out


def reconstruct(
  autoencoder: nn.Module, params, x: jax.Array, key: jax.Array, spec: ChainSpec, latent_dim: int
) -> jax.Array:
  """R(x) in pixel space. ``key`` is used only for a DVAE posterior sample."""
  eps = jax.random.normal(key, (x.shape[0], latent_dim), x.dtype)

  def method(module, x, eps, use_running_average):
    return _reconstruct_pixels(module, x, eps, use_running_average, spec.posterior_sample)

  return _apply(autoencoder, params, method, x, eps, batchnorm=spec.batchnorm)


def decode_prior(
  autoencoder: nn.Module, params, key: jax.Array, num_samples: int, latent_dim: int, batchnorm: str = "batch"
) -> jax.Array:
  """d(z), z ~ N(0, I): the starting point of the paper's Eq. 11 / Fig. 3 chain."""
  z = jax.random.normal(key, (num_samples, latent_dim))
  return _apply(autoencoder, params, _decode_pixels, z, batchnorm=batchnorm)


def uniform_noise(key: jax.Array, shape: Sequence[int]) -> jax.Array:
  """U(0, 1) images: the starting point of the paper's Fig. 1 and Fig. 2 chains."""
  return jax.random.uniform(key, tuple(shape))


def chain(reconstruct_fn: Callable, key: jax.Array, x0: jax.Array, n: int, spec: ChainSpec) -> jax.Array:
  """The trajectory [n + 1, *x0.shape] of the transition above, for any ``reconstruct_fn(x, key) -> R(x)``."""

  def transition(x, t):
    inject_key, posterior_key, step_key = jax.random.split(jax.random.fold_in(key, t), 3)
    x_in = x + spec.noise_std * jax.random.normal(inject_key, x.shape, x.dtype) if spec.noise_std else x
    moved = x + spec.step_size * (reconstruct_fn(x_in, posterior_key) - x)
    if spec.step_noise_std:
      moved = moved + spec.step_noise_std * jax.random.normal(step_key, x.shape, x.dtype)
    return moved, moved

  _, xs = jax.lax.scan(transition, x0, jnp.arange(n))
  return jnp.concatenate([x0[None], xs], axis=0)


def shard_chains(x0: jax.Array, mesh: jax.sharding.Mesh) -> jax.Array:
  """Chains split over the mesh's devices along the batch axis (all processes pass the same x0); a chain count
  that does not divide evenly stays replicated."""
  x0 = np.asarray(x0)  # Host data: each process places the shards its own devices hold.
  if x0.shape[0] % mesh.size:
    return jax.device_put(x0, sharding.replicated(mesh))
  return jax.device_put(x0, sharding.batch_sharded(mesh))


def check_chain_args(x0, n, data_shape: Sequence[int]) -> None:
  """x0 must be float images of the model's shape with values in [0, 1], and n a Python int >= 0.

  The value check needs concrete numbers, so it runs when ``x0`` is an array and is skipped when it is a tracer
  (under ``jax.jit`` only the shape and dtype are known): check a jitted call's x0 before jitting, as
  ``compiled_chain`` does.
  """
  data_shape = tuple(data_shape)
  if x0.ndim != len(data_shape) + 1 or tuple(x0.shape[1:]) != data_shape:
    raise InputError(
      f"sample_chain x0 has shape {tuple(x0.shape)}; expected (batch, {', '.join(map(str, data_shape))})"
    )
  if not jnp.issubdtype(x0.dtype, jnp.floating):
    raise InputError(
      f"sample_chain x0 has dtype {x0.dtype}; expected floats in [0, 1] (for uint8 images, pass x0 / 255)"
    )
  if not isinstance(n, int) or n < 0:
    raise InputError(f"sample_chain n={n!r} is not allowed; it must be a Python int >= 0 (static under jit)")
  if not isinstance(x0, jax.core.Tracer):
    _check_unit_interval(x0)


def _check_unit_interval(x0) -> None:
  low, high = (float(v) for v in jax.device_get((jnp.min(x0), jnp.max(x0))))
  if not (low >= 0.0 and high <= 1.0):  # False for NaN too.
    raise InputError(f"sample_chain x0 holds values from {low} to {high}; expected floats in [0, 1]")


def make_sample_chain(
  autoencoder: nn.Module, data_shape: Sequence[int], latent_dim: int, spec: ChainSpec = ChainSpec()
) -> Callable:
  """``sample_chain(params, key, x0, n)`` for a trained ``autoencoder``; ``params`` is its variable dict
  ({"params": ..., "batch_stats": ...}). Jit it with ``static_argnums=3``."""

  def sample_chain(params, key: jax.Array, x0: jax.Array, n: int) -> jax.Array:
    check_chain_args(x0, n, data_shape)

    def reconstruct_fn(x, posterior_key):
      return reconstruct(autoencoder, params, x, posterior_key, spec, latent_dim)

    return chain(reconstruct_fn, key, x0, n, spec)

  return sample_chain


@functools.partial(jax.jit, static_argnames=("autoencoder", "data_shape", "latent_dim", "spec", "n"))
def _compiled_chain(params, key, x0, *, autoencoder, data_shape, latent_dim, spec, n):
  return make_sample_chain(autoencoder, data_shape, latent_dim, spec)(params, key, x0, n)


def compiled_chain(
  autoencoder: nn.Module,
  data_shape: Sequence[int],
  latent_dim: int,
  spec: ChainSpec,
  params,
  key: jax.Array,
  x0: jax.Array,
  n: int,
) -> jax.Array:
  """``make_sample_chain(...)(params, key, x0, n)``, compiled once per model, spec, length and shape (modules
  and specs compare by value), so figures written every N training steps do not recompile."""
  check_chain_args(x0, n, data_shape)
  return _compiled_chain(
    params, key, x0, autoencoder=autoencoder, data_shape=tuple(data_shape), latent_dim=latent_dim, spec=spec, n=n
  )
