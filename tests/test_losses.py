import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax import losses, objectives


def _naive_bce(logits, targets):
  p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
  return -(targets * np.log(p) + (1 - targets) * np.log(1 - p))


def test_bce_matches_naive_formula_with_sum_and_mean():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (5, 4, 4, 1)).astype(np.float32)
  targets = rng.uniform(0, 1, (5, 4, 4, 1)).astype(np.float32)
  naive = _naive_bce(logits, targets)
  np.testing.assert_allclose(
    objectives.reconstruction_loss("bce", "sum")(logits, targets), naive.sum((1, 2, 3)), rtol=1e-5
  )
  np.testing.assert_allclose(
    objectives.reconstruction_loss("bce", "mean")(logits, targets), naive.mean((1, 2, 3)), rtol=1e-5
  )


def test_bce_is_finite_and_exact_at_saturated_logits():
  logits = jnp.array([[100.0, -100.0, 100.0, -100.0]])
  targets = jnp.array([[1.0, 0.0, 0.0, 1.0]])
  value = objectives.reconstruction_loss("bce", "sum")(logits, targets)
  assert np.isfinite(value).all()
  # Right answers cost ~0; each wrong one costs |logit| = 100 (log(1 + e^100) = 100 + e^-100).
  np.testing.assert_allclose(value, [200.0], rtol=1e-6)


def test_mse_on_sigmoid_of_logits():
  logits = jnp.array([[0.0, 0.0]])
  targets = jnp.array([[1.0, 0.0]])
  np.testing.assert_allclose(objectives.reconstruction_loss("mse", "mean")(logits, targets), [0.25])
  np.testing.assert_allclose(objectives.reconstruction_loss("mse", "sum")(logits, targets), [0.5])


def test_kl_matches_closed_form_per_dimension():
  mean = np.array([[0.3, -1.2]], np.float32)
  std = np.array([[0.5, 2.0]], np.float32)
  expected = np.sum(np.log(1 / std) + (std**2 + mean**2) / 2 - 0.5)
  np.testing.assert_allclose(losses.kl_to_standard_normal(mean, np.log(std**2)), [expected], rtol=1e-5)
  assert float(losses.kl_to_standard_normal(jnp.zeros((1, 3)), jnp.zeros((1, 3)))[0]) == 0.0


@pytest.mark.parametrize("logit", [0.0, 2.0])
def test_adversarial_losses_match_log_sigmoid(logit):
  real = jnp.full((4,), logit)
  fake = jnp.full((4,), -logit)
  sig = 1 / (1 + np.exp(-logit))
  # D is right on both with probability sig; the encoder's loss is -log P(D says "prior") = -log(1 - sig).
  np.testing.assert_allclose(losses.discriminator(real, fake), -2 * np.log(sig), rtol=1e-5)
  np.testing.assert_allclose(losses.generator(fake), -np.log(1 - sig), rtol=1e-5)
