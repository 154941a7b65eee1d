"""The prior-match numbers on cases whose answers are known: the Frechet distance in closed form, the probe's
accuracy against the Bayes accuracy, the discriminator's against a fixed rule, and the codes' corruption."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from dae_jax import experiment
from dae_jax.data import faces
from dae_jax.eval import linear_probe, prior_match

from configs import daae, dvae

DIM, N, PROBE_STEPS = 8, 2000, 300
CONFIGS = {"daae": daae, "dvae": dvae}


def _rotation(dim: int, seed: int) -> np.ndarray:
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
  return q


def test_frechet_of_diagonal_gaussians_is_the_closed_form():
  m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 1.0])
  s1, s2 = np.array([1.0, 0.5, 2.0]), np.array([1.0, 1.5, 0.1])
  expected = np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2)
  got = prior_match.frechet_from_moments(m1, np.diag(s1**2), m2, np.diag(s2**2))
  assert got == pytest.approx(expected, rel=1e-12)
  # A rotation of both changes nothing, so the full-matrix root (not just the diagonal) is right too.
  r = _rotation(3, 0)
  rotated = prior_match.frechet_from_moments(r @ m1, r @ np.diag(s1**2) @ r.T, r @ m2, r @ np.diag(s2**2) @ r.T)
  assert rotated == pytest.approx(expected, rel=1e-9)


def test_frechet_is_safe_for_singular_and_equal_covariances():
  direction = np.array([[1.0], [2.0], [0.0]])
  singular = direction @ direction.T  # Rank 1: its root by eigh, never a complex sqrtm.
  assert prior_match.frechet_from_moments(np.zeros(3), singular, np.zeros(3), singular) == pytest.approx(0, abs=1e-9)
  # N(0, vv^T) against N(0, I): tr(vv^T) + 3 - 2 (sqrt(|v|^2) + 0 + 0) with |v|^2 = 5.
  expected = 5 + 3 - 2 * np.sqrt(5)
  assert prior_match.frechet_from_moments(np.zeros(3), singular, np.zeros(3), np.eye(3)) == pytest.approx(expected)


def _samples(seed: int, scale: float = 1.0, shift: float = 0.0) -> jax.Array:
  return shift + scale * jax.random.normal(jax.random.PRNGKey(seed), (N, DIM))


def _null_frechet() -> float:
  # E||m_a - m_b||^2 = 2d/n, and the covariance term is about ||C_a - C_b||_F^2 / 4 ~ d(d + 1) / (2n).
  return 2 * DIM / N + DIM * (DIM + 1) / (2 * N)


def _accuracy_tolerance(p: float) -> float:
  # 4 binomial sds of an accuracy scored on N held-out points, plus 1% for a probe fitted on finite data.
  return 4 * np.sqrt(p * (1 - p) / N) + 0.01


@pytest.mark.parametrize("seed", [0, 1])
def test_prior_samples_match_the_prior(seed):
  result = prior_match.measure(jax.random.PRNGKey(seed), _samples(10 + seed), PROBE_STEPS)
  assert result["num_codes"] == N
  # Any probe scores 0.5 in expectation when the two sets share one distribution.
  assert abs(result["probe_accuracy"] - 0.5) < _accuracy_tolerance(0.5) - 0.01
  assert 0 <= result["frechet_distance"] < 3 * _null_frechet()
  assert 0 < result["frechet_null"] < 3 * _null_frechet()
  assert "discriminator_accuracy" not in result


def test_shifted_codes_are_told_apart_and_far():
  result = prior_match.measure(jax.random.PRNGKey(2), _samples(12, shift=1.5), PROBE_STEPS)
  # Bayes: two unit Gaussians sqrt(d) * 1.5 apart, told apart at the midpoint.
  bayes = stats.norm.cdf(np.sqrt(DIM) * 1.5 / 2)
  assert abs(result["probe_accuracy"] - bayes) < _accuracy_tolerance(bayes)
  # ||shift||^2 = 2.25 d; the cross term 2 shift . (m_a - m_b) has sd 2 * 1.5 * sqrt(2d / n).
  assert abs(result["frechet_distance"] - 2.25 * DIM) < 4 * 3 * np.sqrt(2 * DIM / N) + _null_frechet()
  assert result["code_mean_abs_max"] == pytest.approx(1.5, abs=4 / np.sqrt(N))


def test_scaled_codes_are_told_apart_and_far():
  result = prior_match.measure(jax.random.PRNGKey(3), _samples(13, scale=0.5), PROBE_STEPS)
  # Bayes: N(0, I) ("prior") against N(0, I / 4) decided by |z|^2 > t, where the two densities are equal.
  t = DIM * np.log(2) / 1.5
  bayes = 0.5 * stats.chi2.sf(t, DIM) + 0.5 * stats.chi2.cdf(4 * t, DIM)
  assert abs(result["probe_accuracy"] - bayes) < _accuracy_tolerance(bayes)
  assert result["probe_accuracy"] > 0.85
  assert result["frechet_distance"] == pytest.approx(DIM * (1 - 0.5) ** 2, rel=0.1)  # sum (s_a - s_b)^2
  low, high = result["code_std_range"]
  assert 0.45 < low <= high < 0.55


def test_discriminator_accuracy_of_a_fixed_rule():
  codes, prior = _samples(14, shift=1.0), _samples(15)
  # "Prior" when z_0 < 0.5: right on N(0, 1) with Phi(0.5), on N(1, 1) codes with Phi(0.5) too.
  accuracy = prior_match.discriminator_accuracy(lambda z: 0.5 - z[:, 0], codes, prior)
  assert accuracy == pytest.approx(stats.norm.cdf(0.5), abs=4 * 0.5 / np.sqrt(2 * N))
  always_prior = prior_match.discriminator_accuracy(lambda z: jnp.ones(len(z)), codes, prior)
  assert always_prior == 0.5


@functools.cache
def _fresh_model(objective):
  run = experiment.build(CONFIGS[objective].get_config("tiny"))
  images = faces.load(32, 1)[:12]
  return run, experiment.initial_state(run, images), images


def test_codes_are_posterior_means_of_corrupted_images():
  run, state, images = _fresh_model("dvae")
  autoencoder, params = run.spec.autoencoder, state.autoencoder_variables()

  def codes(sigma, **kwargs):
    return np.asarray(prior_match.corrupted_codes(autoencoder, params, jax.random.PRNGKey(0), images, sigma, **kwargs))

  clean = np.asarray(linear_probe.encode(autoencoder, params, images))
  np.testing.assert_allclose(codes(0.0), clean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(codes(0.0, num_copies=3), clean, rtol=1e-5, atol=1e-5)  # The mean of equal copies.
  noisy = codes(0.5)
  assert noisy.shape == clean.shape and np.abs(noisy - clean).max() > 1e-3
  np.testing.assert_array_equal(codes(0.5), noisy)  # The key alone decides the noise.
  # Uint8 images are the same images: /255 before corrupting.
  uint8 = np.round(images * 255).astype(np.uint8)
  np.testing.assert_allclose(
    codes(0.0),
    np.asarray(prior_match.corrupted_codes(autoencoder, params, jax.random.PRNGKey(0), uint8, 0.0)),
    atol=0.05,
  )


def test_a_daae_also_reports_its_discriminator_and_a_dvae_does_not():
  for objective in ("daae", "dvae"):
    run, state, images = _fresh_model(objective)
    # The discriminator runs with deterministic=True: with dropout on, Flax would ask for a dropout key here.
    result = prior_match.of_model(run.spec, state, jax.random.PRNGKey(0), images, probe_steps=20)
    assert result["num_codes"] == 12
    assert ("discriminator_accuracy" in result) == (objective == "daae")
    assert 0 <= result["probe_accuracy"] <= 1 and result["frechet_distance"] >= 0
