import functools

import jax
import numpy as np
import pytest

from dae_jax import experiment, rng, sharding, train, train_step
from dae_jax.data import faces, loader
from dae_jax.errors import InputError, TrainingDiverged


def _setup(config, devices):
  config.train.num_devices = devices
  run = experiment.build(config)
  images = faces.load(config.data.image_size, config.data.channels)[: config.train.batch_size]
  state = experiment.initial_state(run, images)
  step = sharding.jit_train_step(functools.partial(train_step.train_step, spec=run.spec), run.mesh, donate_state=False)
  return run, state, step, images


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("objective", ["dae", "dvae", "daae"])
def test_one_step_is_finite_and_moves_every_trained_network(tiny_config, objective):
  run, state, step, images = _setup(tiny_config(objective), 4)
  new_state, metrics = step(state, sharding.global_batch(images, run.mesh, len(images)), run.step_key)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  expected = {
    "dae": {"loss", "reconstruction"},
    "dvae": {"loss", "reconstruction", "kl"},
    "daae": {"loss", "reconstruction", "adversarial", "discriminator"},
  }[objective]
  assert set(metrics) == expected
  assert int(new_state.step) == 1
  for before, after in zip(_leaves(state.ae_params), _leaves(new_state.ae_params)):
    assert not np.array_equal(before, after)
  if objective == "daae":
    assert all(not np.array_equal(b, a) for b, a in zip(_leaves(state.disc_params), _leaves(new_state.disc_params)))
  else:
    assert new_state.disc_params is None


def test_reconstruction_loss_is_bce_of_the_batch(tiny_config):
  """With sum reduction the BCE of 32x32 grey images is hundreds of nats; with mean it is below ~1."""
  _, state, step, images = _setup(tiny_config("dae", loss__reduction="mean"), 1)
  run = experiment.build(tiny_config("dae", loss__reduction="mean", train__num_devices=1))
  _, metrics = step(state, images, run.step_key)
  assert 0.3 < float(metrics["reconstruction"]) < 1.5


def test_the_step_compiles_once(tiny_config):
  config = tiny_config("daae")
  config.train.num_devices = 4
  run = experiment.build(config)
  images = faces.load(32, 1)
  traces = []

  def counting_step(state, batch, key):
    traces.append(1)
    return train_step.train_step(state, batch, key, spec=run.spec)

  step = sharding.jit_train_step(counting_step, run.mesh)
  state = experiment.initial_state(run, images[:8])
  for i in range(3):
    state, _ = step(state, sharding.global_batch(images[8 * i : 8 * (i + 1)], run.mesh, 8), run.step_key)
  assert len(traces) == 1 and int(state.step) == 3


def test_same_inputs_same_step_and_the_step_number_changes_the_noise(tiny_config):
  run, state, step, images = _setup(tiny_config("dvae"), 1)
  a, metrics_a = step(state, images, run.step_key)
  b, metrics_b = step(state, images, run.step_key)
  jax.tree.map(np.testing.assert_array_equal, a.ae_params, b.ae_params)
  later, metrics_later = step(state.replace(step=state.step + 5), images, run.step_key)
  assert float(metrics_a["loss"]) != float(metrics_later["loss"])


@pytest.mark.parametrize("objective", ["dvae", "daae"])
def test_four_devices_match_one_device(tiny_config, objective):
  run1, state1, step1, images = _setup(tiny_config(objective), 1)
  run4, state4, step4, _ = _setup(tiny_config(objective), 4)
  assert run4.mesh.size == 4
  jax.tree.map(np.testing.assert_array_equal, _leaves(state1), _leaves(state4))
  for _i in range(2):
    state1, metrics1 = step1(state1, sharding.global_batch(images, run1.mesh, len(images)), run1.step_key)
    state4, metrics4 = step4(state4, sharding.global_batch(images, run4.mesh, len(images)), run4.step_key)
  for a, b in zip(_leaves(state1), _leaves(state4)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
  for name in metrics1:
    np.testing.assert_allclose(metrics1[name], metrics4[name], rtol=1e-4)


def test_batch_not_divisible_by_devices_is_a_clear_error(tiny_config):
  config = tiny_config("dae", train__batch_size=6, train__num_devices=4)
  with pytest.raises(InputError, match=r"train.batch_size=6 is not divisible by the 4 devices"):
    experiment.build(config)
  run = experiment.build(tiny_config("dae", train__num_devices=4))
  with pytest.raises(InputError, match="not divisible by the 4 devices"):
    sharding.global_batch(np.zeros((6, 32, 32, 1), np.float32), run.mesh, 6)


def test_more_devices_than_exist_is_a_clear_error(tiny_config):
  with pytest.raises(InputError, match=r"train.num_devices=5 is more than the 4 devices"):
    experiment.build(tiny_config("dae", train__num_devices=5))


def test_integrated_corruption_trains(tiny_config):
  run, state, step, images = _setup(tiny_config("daae", noise__num_copies=3), 4)
  new_state, metrics = step(state, sharding.global_batch(images, run.mesh, len(images)), run.step_key)
  assert np.isfinite(float(metrics["loss"])) and int(new_state.step) == 1


def test_device_resident_and_host_feeding_train_identically(tiny_config):
  images = np.round(faces.load(32, 1) * 255).astype(np.uint8)
  finals = []
  for device_resident in (False, True):
    run = experiment.build(tiny_config("dae", train__num_devices=4, data__flip=True))
    feeder = loader.make_feeder(images, 0, 8, run.mesh, device_resident)
    step = sharding.jit_train_step(
      functools.partial(train.step_from_inputs, spec=run.spec), run.mesh, input_sharding=feeder.input_sharding
    )
    state = experiment.initial_state(run, loader.batch_at(images, 0, 0, 8))
    for s in range(2):
      state, _ = step(state, feeder(s), run.step_key)
    finals.append(_leaves(state.ae_params))
  for a, b in zip(*finals):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_non_finite_loss_stops_training_with_a_clear_message():
  train._check_finite(3, {"loss": 1.0, "kl": 2.0})
  with pytest.raises(TrainingDiverged, match=r"non-finite loss at step 7: \{'loss': nan\}"):
    train._check_finite(7, {"loss": float("nan"), "kl": 2.0})


def test_a_dvae_step_flips_with_its_own_stream_not_the_posterior_one(tiny_config):
  """The step with data.flip equals the step without it on the batch flipped by the "flip" stream of that step;
  test_rng shows that stream independent of the "posterior" one the same step draws its noise from."""
  run, state, step, images = _setup(tiny_config("dvae", data__flip=True), 1)
  plain = experiment.build(tiny_config("dvae", train__num_devices=1))
  plain_step = sharding.jit_train_step(
    functools.partial(train_step.train_step, spec=plain.spec), plain.mesh, donate_state=False
  )
  state = state.replace(step=state.step + 3)
  flipped = loader.random_flip(rng.step_keys(run.step_key, 3)["flip"], images)
  assert 0 < int(np.sum(np.any(np.asarray(flipped) != images, axis=(1, 2, 3)))) < len(images)
  with_flip, metrics = step(state, images, run.step_key)
  by_hand, metrics_by_hand = plain_step(state, flipped, plain.step_key)
  jax.tree.map(np.testing.assert_array_equal, with_flip.ae_params, by_hand.ae_params)
  assert float(metrics["kl"]) == float(metrics_by_hand["kl"])
