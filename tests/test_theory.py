import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax.theory import score_check

from conftest import REPO


def _mixture(dim=2):
  return score_check.make_mixture(jax.random.PRNGKey(0), dim, 4, 0.05)


def test_closed_form_score_is_the_gradient_of_the_noisy_log_density():
  mixture = _mixture()
  sigma = 0.3
  variance = mixture.std**2 + sigma**2

  def log_density(x):  # log sum_k pi_k N(x; mu_k, variance I), written independently.
    squared = jnp.sum((x[None] - mixture.means) ** 2, -1)
    return jax.scipy.special.logsumexp(jnp.log(mixture.weights) - 0.5 * squared / variance)

  points = jax.random.uniform(jax.random.PRNGKey(1), (50, 2))
  np.testing.assert_allclose(
    score_check.noisy_score(mixture, points, sigma), jax.vmap(jax.grad(log_density))(points), rtol=1e-4, atol=1e-4
  )


def test_one_component_optimal_denoiser_is_the_gaussian_posterior_mean():
  mixture = score_check.Mixture(jnp.array([[0.4, 0.6]]), 0.1, jnp.array([1.0]))
  x = jnp.array([[0.0, 1.0], [0.5, 0.5]])
  sigma = 0.2
  shrink = 0.1**2 / (0.1**2 + sigma**2)
  expected = shrink * x + (1 - shrink) * mixture.means
  np.testing.assert_allclose(score_check.optimal_denoiser(mixture, x, sigma), expected, rtol=1e-5)


def test_samples_stay_in_the_unit_cube_and_follow_the_components():
  mixture = _mixture(16)
  x = score_check.sample(jax.random.PRNGKey(2), mixture, 4000)
  assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
  nearest = jnp.min(jnp.linalg.norm(x[:, None] - mixture.means[None], axis=-1), axis=1)
  assert float(jnp.median(nearest)) == pytest.approx(0.05 * np.sqrt(16), rel=0.1)


def test_compare_gives_perfect_marks_to_the_optimum_and_poor_ones_to_identity():
  mixture = _mixture()
  points = score_check.held_out_points(jax.random.PRNGKey(3), mixture, 0.5, 256)
  perfect = score_check.compare(mixture, lambda x: score_check.optimal_denoiser(mixture, x, 0.5), points, 0.5)
  assert perfect["score_cosine"] == pytest.approx(1.0, abs=1e-5)
  assert perfect["score_relative_error"] == pytest.approx(0.0, abs=1e-5)
  shrunk = score_check.compare(mixture, lambda x: 0.5 * x + 0.25, points, 0.5)
  assert shrunk["score_relative_error"] > 0.2


@pytest.mark.slow
def test_theory_mode_writes_the_table_and_plots(tmp_path):
  result = subprocess.run(
    [sys.executable, "-m", "dae_jax.main", "--mode=theory", "--config=configs/theory.py:tiny", f"--workdir={tmp_path}"],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    env=dict(os.environ),
  )
  assert result.returncode == 0, result.stderr[-3000:]
  rows = json.loads((tmp_path / "theory" / "results.json").read_text())
  assert [(r["dim"], r["loss"], r["sigma"]) for r in rows] == [(2, "bce", 0.5), (2, "mse", 0.5)]
  assert all(-1 <= r["score_cosine"] <= 1 and np.isfinite(r["score_relative_error"]) for r in rows)
  assert "| 2 | bce | 0.5 |" in (tmp_path / "theory" / "results.md").read_text()
  for name in ("score_fields.png", "error_vs_sigma.png", "bce_vs_mse.png"):
    assert (tmp_path / "theory" / name).stat().st_size > 1000
