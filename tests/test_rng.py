"""The key schedule: every stream of every step distinct, and a pure function of (seed, step)."""

import jax
import numpy as np

from dae_jax import rng
from dae_jax.data import loader


def _data(key) -> tuple:
  return tuple(np.asarray(jax.random.key_data(key)).ravel().tolist())


def test_every_step_stream_is_distinct_from_every_other_over_many_steps():
  train_key = rng.run_key(0, "train")
  seen = {}
  for step in range(64):
    for name, key in rng.step_keys(train_key, step).items():
      seen.setdefault(_data(key), []).append((step, name))
  assert len(seen) == 64 * len(rng.STEP_STREAMS), [v for v in seen.values() if len(v) > 1][:3]


def test_run_keys_are_distinct_per_name_and_per_seed():
  keys = {(seed, name): _data(rng.run_key(seed, name)) for seed in (0, 1) for name in rng.RUN_STREAMS}
  assert len(set(keys.values())) == len(keys)


def test_the_schedule_is_reproduced_on_resume_and_under_jit():
  """A resumed run computes the keys of step s afresh, with s traced inside the jitted step."""
  first = rng.step_keys(rng.run_key(3, "train"), 17)
  traced = jax.jit(rng.step_keys)(rng.run_key(3, "train"), np.int32(17))
  assert {n: _data(k) for n, k in first.items()} == {n: _data(k) for n, k in traced.items()}
  assert _data(rng.step_keys(rng.run_key(3, "train"), 18)["flip"]) != _data(first["flip"])


def _flip_posterior_agreement(flip_key, posterior_key, batch: int = 64, latent: int = 8) -> float:
  """How often "image i is flipped" agrees with "the i-th posterior noise value is negative", drawn the way the
  step draws both. 0.5 for independent streams; 1.0 if the two keys are one (flip i and noise i then come from
  the same uniform bits)."""
  ramp = np.tile(np.array([0.0, 1.0]).reshape(1, 1, 2, 1), (batch, 1, 1, 1))  # One row, two columns.
  flipped = loader.random_flip(flip_key, ramp)[:, 0, 0, 0] == 1.0
  eps = jax.random.normal(posterior_key, (batch, latent))
  return float(np.mean(np.asarray(flipped) == np.asarray(eps.ravel()[:batch] < 0)))


def test_flips_are_independent_of_the_posterior_noise():
  train_key = rng.run_key(0, "train")
  agreement = np.mean(
    [_flip_posterior_agreement(k["flip"], k["posterior"]) for k in (rng.step_keys(train_key, s) for s in range(40))]
  )
  assert abs(agreement - 0.5) < 0.05  # 2,560 draws: the standard error is 0.01.


def test_the_flip_check_catches_the_keys_it_was_written_for():
  """The old derivation, fold_in(fold_in(key, step), 1) for the flip beside split(fold_in(key, step), 5)[1] for the
  posterior, made one key of the two: the check above must fail on it."""
  key = jax.random.PRNGKey(0)
  old = [
    _flip_posterior_agreement(
      jax.random.fold_in(jax.random.fold_in(key, s), 1), jax.random.split(jax.random.fold_in(key, s), 5)[1]
    )
    for s in range(10)
  ]
  assert np.mean(old) > 0.9
