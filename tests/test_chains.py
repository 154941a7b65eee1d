"""The named chains: Fig. 3 adds noise before each encoding as its caption says, or none as Eq. 11 writes."""

import jax
import numpy as np
import pytest

from dae_jax import chains, config_lib, sampling
from dae_jax.errors import InputError


def _chain_config(fig3=None, noise_std=0.3):
  chain = config_lib.default_config().chain
  chain.noise_std = noise_std
  if fig3 is not None:
    chain.fig3 = fig3
  return chain


def test_default_fig3_is_fig2s_spec_at_fig1s_length():
  chain = _chain_config()
  paper = chains.paper_chains(chain)
  fig3 = paper["fig3_from_prior"]
  assert fig3.start == "prior" and fig3.num_steps == chain.num_steps
  assert fig3.spec.noise_std == 0.3
  assert fig3.spec == paper["fig2_noise_injection"].spec


def test_eq11_fig3_adds_no_noise():
  fig3 = chains.paper_chains(_chain_config("eq11"))["fig3_from_prior"]
  assert fig3.spec.noise_std == 0.0
  assert fig3.spec == chains.paper_chains(_chain_config())["fig1_from_noise"].spec


def test_caption_is_also_accepted_by_name():
  assert chains.paper_chains(_chain_config("caption"))["fig3_from_prior"].spec.noise_std == 0.3


def test_an_unknown_fig3_reading_is_refused_with_its_name():
  with pytest.raises(InputError, match=r"chain.fig3='eq12' is not allowed; choose one of caption, eq11"):
    chains.paper_chains(_chain_config("eq12"))


@pytest.mark.parametrize("fig3", [None, "caption", "eq11"])
def test_eval_measures_both_readings_whatever_the_config_says(fig3):
  config = config_lib.default_config()
  config.chain = _chain_config(fig3)
  measured = chains.eval_chains(config.chain, config.eval)
  assert set(measured) == {"from_noise", "noise_injection", "from_prior", "from_prior_eq11", "nguyen"}
  assert measured["from_prior"].spec.noise_std == 0.3
  assert measured["from_prior_eq11"].spec.noise_std == 0.0
  for name in ("from_prior", "from_prior_eq11"):
    assert measured[name].start == "prior" and measured[name].num_steps == config.chain.num_steps


def _trajectory(fig3, reconstruct_fn, steps=4):
  spec = chains.paper_chains(_chain_config(fig3))["fig3_from_prior"].spec
  x0 = jax.random.uniform(jax.random.PRNGKey(0), (32, 16, 16, 1))
  return np.asarray(sampling.chain(reconstruct_fn, jax.random.PRNGKey(1), x0, steps, spec), np.float64)


def test_the_default_chain_really_injects_noise_of_the_configured_std():
  trajectory = _trajectory(None, lambda x, key: x)
  # With R the identity each step is x + noise, so the increments are the injected noise itself.
  increments = np.diff(trajectory, axis=0)
  assert increments.shape == (4, 32, 16, 16, 1)
  n = increments[0].size
  for step in increments:  # Every step injects, each with the configured std (its estimate has sd std / sqrt(2n)).
    assert abs(step.std() - 0.3) < 4 * 0.3 / np.sqrt(2 * n)
    assert abs(step.mean()) < 4 * 0.3 / np.sqrt(n)
  correlation = np.corrcoef(increments[0].ravel(), increments[1].ravel())[0, 1]
  assert abs(correlation) < 4 / np.sqrt(n)  # Fresh noise at every step.


def test_the_noise_goes_into_the_encoder_not_after_it():
  # R(x) = x / 2 halves whatever it is given: x_{t+1} - x_t / 2 is then half the noise added before R.
  trajectory = _trajectory(None, lambda x, key: x / 2)
  residual = trajectory[1:] - trajectory[:-1] / 2
  n = residual[0].size
  assert abs(residual.std() - 0.15) < 4 * 0.15 / np.sqrt(2 * residual.size)
  assert np.all(np.abs(residual.std(axis=tuple(range(1, residual.ndim))) - 0.15) < 4 * 0.15 / np.sqrt(2 * n))


def test_the_eq11_chain_adds_exactly_nothing():
  trajectory = _trajectory("eq11", lambda x, key: x)
  assert np.all(np.diff(trajectory, axis=0) == 0)


def test_a_locked_default_config_reads_as_the_caption():
  locked = config_lib.default_config()
  locked.lock()
  assert chains.fig3_reading(locked.chain) == "caption"
  assert chains.paper_chains(locked.chain)["fig3_from_prior"].spec.noise_std == locked.chain.noise_std > 0
