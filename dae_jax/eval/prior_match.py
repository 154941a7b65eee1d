"""How closely the codes of held-out images match the prior N(0, I) that Fig. 3's d(z) samples from.

If the codes of real images lie somewhere the prior rarely reaches, decoded prior samples d(z) are not data-like
and Fig. 3's chain starts far from the images. Three numbers, each against as many N(0, I) samples as codes:

- ``frechet_distance``: between the Gaussians fitted to the codes and to the prior samples (as FID does for
  Inception features), in closed form; ``frechet_null`` is the same distance between two independent sets of
  prior samples of that size, the floor that sampling alone gives.
- ``probe_accuracy``: a fresh logistic regression on (z, z^2), fitted on one half and scored on the other; 0.5
  means it cannot tell the codes from the prior. It sees differences of mean and of per-dimension variance;
  differences of correlation it misses, and the Frechet distance sees.
- ``discriminator_accuracy`` (DAAE): how often the trained discriminator itself is right on the same sets.

Codes are those the regulariser sees in training: of images corrupted with the training noise (averaged over
the M copies when ``noise.num_copies`` > 1), the posterior mean for the DVAE, with BatchNorm's running averages.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dae_jax import corruption, rng, train_step
from dae_jax.data import loader
from dae_jax.eval import linear_probe


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  """The symmetric square root of a symmetric PSD matrix; rounding's small negative eigenvalues count as 0."""
  values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
  return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_from_moments(mean_a, cov_a, mean_b, cov_b) -> float:
  """||m_a - m_b||^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2), in float64.

  The product under the outer root is written symmetrically, so it stays symmetric PSD and an eigendecomposition
  gives its root, where ``scipy.linalg.sqrtm`` of the non-symmetric C_a C_b can turn complex or lose accuracy.
  """
  mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
  cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
  root_a = _psd_sqrt(cov_a)
  middle = root_a @ cov_b @ root_a
  cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
  distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
  return float(max(distance, 0.0))  # Rounding can leave a tiny negative for equal Gaussians.


def frechet_distance(a, b) -> float:
  """The Frechet distance between the Gaussians fitted to the rows of ``a`` and of ``b`` ([n, d] each)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return frechet_from_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def quadratic_features(z: jax.Array) -> jax.Array:
  return jnp.concatenate([z, z**2], axis=1)


def probe_accuracy(key: jax.Array, codes: jax.Array, prior: jax.Array, steps: int) -> float:
  """Held-out accuracy of logistic regression on (z, z^2) telling ``prior`` (label 1) from ``codes`` (label 0).

  The two sets are shuffled together and split in halves: fitted on the first, scored on the second.
  """
  x = quadratic_features(jnp.concatenate([codes, prior]))
  labels = jnp.concatenate([jnp.zeros(len(codes), bool), jnp.ones(len(prior), bool)])
  order = jax.random.permutation(key, len(x))
  x, labels = x[order], labels[order]
  half = len(x) // 2
  params, mean, std = jax.jit(linear_probe.fit, static_argnums=2)(x[:half], labels[:half, None], steps)
  predictions = (((x[half:] - mean) / std) @ params["w"] + params["b"])[:, 0] > 0
  return float(jnp.mean(predictions == labels[half:]))


def discriminator_accuracy(logits_fn, codes: jax.Array, prior: jax.Array) -> float:
  """Balanced accuracy of a discriminator (``logits_fn(z)`` > 0 means "prior") on codes and prior samples."""
  return float((jnp.mean(logits_fn(prior) > 0) + jnp.mean(logits_fn(codes) <= 0)) / 2)


@functools.partial(jax.jit, static_argnames=("autoencoder", "sigma", "clip", "num_copies"))
def _encode_corrupted(params, key, batch, *, autoencoder, sigma, clip, num_copies):
  noisy = corruption.gaussian_copies(key, batch, sigma, num_copies, clip=clip)
  mean, _ = autoencoder.apply(params, noisy.reshape(-1, *batch.shape[1:]), True, method=autoencoder.encode)
  return train_step.integrate_copies(mean, num_copies)


def corrupted_codes(
  autoencoder,
  params,
  key: jax.Array,
  images,
  sigma: float,
  *,
  clip: bool = False,
  num_copies: int = 1,
  batch_size: int = 256,
) -> jax.Array:
  """Codes (posterior means) of ``images`` (uint8, or floats in [0, 1]) corrupted as in training, in batches.

  Compiled once per model and corruption (modules compare by value), so calling it at every log interval of a
  training run does not recompile.
  """
  codes = []
  for start in range(0, len(images), batch_size):
    batch = jnp.asarray(loader.to_pixels(np.asarray(images[start : start + batch_size])))
    codes.append(
      _encode_corrupted(
        params,
        jax.random.fold_in(key, start),
        batch,
        autoencoder=autoencoder,
        sigma=float(sigma),
        clip=bool(clip),
        num_copies=int(num_copies),
      )
    )
  return jnp.concatenate(codes)


def measure(key: jax.Array, codes: jax.Array, probe_steps: int, discriminator_logits=None) -> dict:
  """The numbers above for ``codes`` [n, d] against n fresh N(0, I) samples."""
  prior = jax.random.normal(rng.named(key, "prior"), codes.shape, codes.dtype)
  null = jax.random.normal(rng.named(key, "null"), codes.shape, codes.dtype)
  result = {
    "num_codes": int(codes.shape[0]),
    "frechet_distance": frechet_distance(codes, prior),
    "frechet_null": frechet_distance(null, prior),
    "probe_accuracy": probe_accuracy(rng.named(key, "probe"), codes, prior, probe_steps),
    "code_mean_abs_max": float(jnp.max(jnp.abs(codes.mean(0)))),
    "code_std_range": [float(codes.std(0).min()), float(codes.std(0).max())],
  }
  if discriminator_logits is not None:
    result["discriminator_accuracy"] = discriminator_accuracy(discriminator_logits, codes, prior)
  return result


def of_model(
  experiment_spec, state, key: jax.Array, images: jax.Array, probe_steps: int, *, batch_size: int = 256
) -> dict:
  """``measure`` for a trained model (a ``train_step.StepSpec`` and its ``TrainState``) on held-out ``images``."""
  codes = corrupted_codes(
    experiment_spec.autoencoder,
    state.autoencoder_variables(),
    rng.named(key, "corrupt"),
    images,
    experiment_spec.sigma,
    clip=experiment_spec.clip_corruption,
    num_copies=experiment_spec.num_copies,
    batch_size=batch_size,
  )
  discriminator_logits = None
  if experiment_spec.discriminator is not None:

    def discriminator_logits(z):
      return experiment_spec.discriminator.apply({"params": state.disc_params}, z, deterministic=True)

  return measure(key, codes, probe_steps, discriminator_logits)


# Held-out images whose prior match is logged during training: enough for the probe, cheap at every log step.
TRAINING_SAMPLES = 512
TRAINING_SCALARS = ("frechet_distance", "probe_accuracy", "discriminator_accuracy")


def training_scalars(experiment_spec, state, key: jax.Array, images, probe_steps: int) -> dict:
  """``of_model`` on a fixed held-out batch, as scalars named "prior_match/<measure>" for the training log.

  Only the parameters and BatchNorm statistics are fetched to the host (not the optimiser states, twice their
  size), so the process that logs computes it on its own, whatever the mesh the state is sharded over.
  """
  weights = jax.device_get(state.replace(ae_opt_state=None, disc_opt_state=None, gen_opt_state=None))
  match = of_model(experiment_spec, weights, key, images, probe_steps)
  return {f"prior_match/{name}": match[name] for name in TRAINING_SCALARS if name in match}
