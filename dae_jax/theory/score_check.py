"""The score identity checked against ground truth (the paper's Eq. 9 at a finite sigma).

For data from a Gaussian mixture p = sum_k pi_k N(mu_k, s^2 I) inside [0, 1]^d, the noisy density
p_sigma = p * N(0, sigma^2 I) is again a mixture, sum_k pi_k N(mu_k, (s^2 + sigma^2) I), so the optimal
denoiser is known exactly:

  R*(x~) = E[x | x~] = x~ + sigma^2 grad log p_sigma(x~).

MLP DAEs trained with BCE and with MSE are compared with it at held-out noisy points: the cosine similarity and
relative error between (R(x~) - x~) / sigma^2 and the analytic score, and the RMS distance of R from R*.

What is tested is Eq. 9 at the sigma trained with: R against the score of the smoothed density p_sigma. Eq. 3,
(R(x) - x) / sigma^2 -> grad log p(x), is the limit sigma -> 0 and is not tested here.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dae_jax import config_lib, experiment, train_state, train_step


@dataclasses.dataclass(frozen=True)
class Mixture:
  means: jax.Array  # [K, d]
  std: float
  weights: jax.Array  # [K]


def make_mixture(key: jax.Array, dim: int, num_components: int, std: float) -> Mixture:
  """Means uniform in [0.2, 0.8]^d: at least 4 stds inside [0, 1] when std <= 0.05, which makes leaving it rare,
  not impossible. A coordinate of a component at 0.2 (or 0.8) with std 0.05 falls outside with probability
  Phi(-4) = 3.2e-5 (about 1e-6 averaged over the uniform means), and a sample has d coordinates."""
  means = jax.random.uniform(key, (num_components, dim), minval=0.2, maxval=0.8)
  return Mixture(means, std, jnp.full((num_components,), 1.0 / num_components))


def sample(key: jax.Array, mixture: Mixture, n: int) -> jax.Array:
  component_key, noise_key = jax.random.split(key)
  components = jax.random.choice(component_key, mixture.means.shape[0], (n,), p=mixture.weights)
  x = mixture.means[components] + mixture.std * jax.random.normal(noise_key, (n, mixture.means.shape[1]))
  # Keeps BCE targets valid. Not a no-op: the rare coordinates outside [0, 1] (see make_mixture) land on its edge,
  # so the data are p with that small mass moved, and noisy_score is exact for p rather than for them.
  return jnp.clip(x, 0.0, 1.0)


def noisy_score(mixture: Mixture, x: jax.Array, sigma: float) -> jax.Array:
  """grad log p_sigma(x), [n, d], in closed form."""
  variance = mixture.std**2 + sigma**2
  differences = mixture.means[None] - x[:, None]  # [n, K, d]
  log_terms = jnp.log(mixture.weights)[None] - 0.5 * jnp.sum(differences**2, -1) / variance
  responsibilities = jax.nn.softmax(log_terms, axis=1)
  return jnp.einsum("nk,nkd->nd", responsibilities, differences) / variance


def optimal_denoiser(mixture: Mixture, x: jax.Array, sigma: float) -> jax.Array:
  return x + sigma**2 * noisy_score(mixture, x, sigma)


def _model_config(config, loss: str, sigma: float) -> ml_collections.ConfigDict:
  model = config_lib.default_config()
  model.model.objective = "dae"
  model.model.architecture = "mlp"
  model.model.mlp_hidden = tuple(config.hidden)
  model.model.latent_dim = config.latent_dim
  model.loss.reconstruction = loss
  model.loss.reduction = "sum"
  model.noise.sigma = sigma
  model.optim.learning_rate = config.learning_rate
  model.optim.b1 = 0.9
  return model


def train_denoiser(config, mixture: Mixture, loss: str, sigma: float, key: jax.Array):
  """An MLP DAE trained on fresh mixture samples each step, all steps in one scan on the device."""
  model_config = _model_config(config, loss, sigma)
  spec = experiment.step_spec(model_config, (mixture.means.shape[1],))
  init_key, data_key, step_key = jax.random.split(key, 3)
  state = train_state.create(
    init_key, spec.autoencoder, None, spec.ae_tx, None, sample(data_key, mixture, config.batch_size), spec.latent_dim
  )

  def one_step(state, t):
    batch = sample(jax.random.fold_in(data_key, t), mixture, config.batch_size)
    return train_step.train_step(state, batch, step_key, spec=spec)

  @jax.jit
  def train(state):
    return jax.lax.scan(one_step, state, jnp.arange(config.num_steps))

  state, metrics = train(state)
  return spec.autoencoder, state.autoencoder_variables(), np.asarray(metrics["loss"])


def learned_denoiser(autoencoder, params):
  """R(x) = sigmoid(d(e(x))) of a trained MLP DAE (no BatchNorm, so no minibatch dependence)."""
  return jax.jit(lambda x: jax.nn.sigmoid(autoencoder.apply(params, x, True)))


def compare(mixture: Mixture, denoiser, points: jax.Array, sigma: float) -> dict:
  """Learned vs analytic score and denoiser at ``points``."""
  learned = (denoiser(points) - points) / sigma**2
  true = noisy_score(mixture, points, sigma)
  cosine = jnp.sum(learned * true, -1) / (jnp.linalg.norm(learned, axis=-1) * jnp.linalg.norm(true, axis=-1))
  optimum = optimal_denoiser(mixture, points, sigma)
  return {
    "score_cosine": float(jnp.mean(cosine)),
    "score_relative_error": float(jnp.linalg.norm(learned - true) / jnp.linalg.norm(true)),
    # (R - R*) = sigma^2 (learned - true), so its relative size equals the score's; this is the absolute size.
    "denoiser_rmse": float(jnp.sqrt(jnp.mean(jnp.sum((denoiser(points) - optimum) ** 2, -1)))),
  }


def held_out_points(key: jax.Array, mixture: Mixture, sigma: float, n: int) -> jax.Array:
  """Noisy samples x + N(0, sigma^2): where the denoiser is used, and never seen in training."""
  data_key, noise_key = jax.random.split(key)
  x = sample(data_key, mixture, n)
  return x + sigma * jax.random.normal(noise_key, x.shape)


def run_case(config, dim: int, loss: str, sigma: float) -> tuple:
  """(metrics, mixture, denoiser) for one (dimension, loss, sigma)."""
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), dim)
  mixture = make_mixture(key, dim, config.num_components, config.component_std)
  train_key = jax.random.fold_in(jax.random.fold_in(key, int(sigma * 1000)), {"bce": 1, "mse": 2}[loss])
  autoencoder, params, losses = train_denoiser(config, mixture, loss, sigma, train_key)
  denoiser = learned_denoiser(autoencoder, params)
  points = held_out_points(jax.random.fold_in(key, 7), mixture, sigma, config.num_eval_points)
  metrics = {
    "dim": dim,
    "loss": loss,
    "sigma": sigma,
    **compare(mixture, denoiser, points, sigma),
    "final_train_loss": float(losses[-100:].mean()),
  }
  return metrics, mixture, denoiser
