"""train.steps_per_call: k steps in one loop give the run k single steps give, bit for bit, and resume across
dispatches."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax import config_lib, data, experiment, multi_step, sharding, train
from dae_jax.data import loader
from dae_jax.errors import InputError

from configs import daae

# Exact equality, not a tolerance: single steps run as a loop of one step, the body a k-step dispatch loops over
# (multi_step.py). Compiled outside a loop, the step differed from the looped one by up to ~2e-6 after 4 steps.


def _config(**train_overrides):
  config = daae.get_config("tiny")
  config.train.num_steps = 6
  config.train.log_every_steps = 2
  config.train.checkpoint_every_steps = 2
  config.train.figures_every_steps = 6
  for name, value in train_overrides.items():
    config.train[name] = value
  return config


def _records(workdir) -> list:
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _checkpoint_steps(workdir) -> list:
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir())


def _assert_states_equal(actual, expected) -> None:
  actual, expected = jax.device_get((actual, expected))
  assert jax.tree.structure(actual) == jax.tree.structure(expected)
  for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(actual)[0], jax.tree.leaves(expected), strict=True):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, jax.tree_util.keystr(path)
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))


def _assert_losses_equal(records, reference, steps) -> None:
  by_step = {r["step"]: r for r in reference}
  for record in records:
    if record["step"] in steps:
      for name in ("loss", "reconstruction", "discriminator", "adversarial"):
        assert record[name] == by_step[record["step"]][name], (record["step"], name)


@pytest.fixture(scope="module")
def single_steps(tmp_path_factory):
  """The reference: 6 steps of the tiny DAAE, one per dispatch, logged and saved every 2."""
  workdir = tmp_path_factory.mktemp("single_steps")
  state = train.train_and_evaluate(_config(steps_per_call=1), str(workdir))
  return jax.device_get(state), _records(workdir)


@pytest.mark.parametrize(
  "start, stop, k, expected",
  [
    (0, 6, 2, [(0, 2), (2, 2), (4, 2)]),
    (0, 7, 3, [(0, 3), (3, 3), (6, 1)]),  # The last step is not a whole k.
    (3, 10, 4, [(3, 1), (4, 4), (8, 1), (9, 1)]),  # A resume from step 3: single steps up to the first multiple.
    (5, 8, 1, [(5, 1), (6, 1), (7, 1)]),
    (0, 3, 4, [(0, 1), (1, 1), (2, 1)]),  # Fewer steps than k.
    (6, 6, 2, []),  # Already trained.
  ],
)
def test_calls_split_a_range_into_dispatches_starting_on_multiples_of_k(start, stop, k, expected):
  dispatches = list(multi_step.calls(start, stop, k))
  assert dispatches == expected
  covered = [step for first, size in dispatches for step in range(first, first + size)]
  assert covered == list(range(start, stop))


def test_scan_steps_runs_the_steps_in_order_and_returns_the_last_metrics():
  def step(state, batch, key):
    # Not commutative in the batches, so the order of the steps shows in the result.
    new = state * 2 + batch.sum() + key
    return new, {"seen": batch.sum(), "state": new}

  batches = jnp.arange(12.0).reshape(3, 2, 2)  # Three steps of [2, 2] batches.
  state, metrics = jax.jit(multi_step.scan_steps(step))(jnp.float32(1.0), batches, jnp.float32(0.5))
  expected = 1.0
  for batch in np.arange(12.0).reshape(3, 2, 2):
    expected = expected * 2 + batch.sum() + 0.5
  assert float(state) == expected
  assert float(metrics["seen"]) == np.arange(12.0).reshape(3, 2, 2)[-1].sum()
  assert float(metrics["state"]) == expected


def test_a_loop_of_one_step_stays_a_loop_in_the_compiled_program():
  # XLA inlines a loop that runs once unless told not to; inlined, the single steps of a run would no longer be
  # compiled as the body its k-step dispatches loop over, and would differ from them in the last bits.
  def step(state, batch, key):
    return state * batch.sum() + key, {"seen": batch.sum()}

  compiled = jax.jit(multi_step.scan_steps(step)).lower(jnp.float32(1.0), jnp.ones((1, 2, 2)), jnp.float32(0.5))
  assert " while(" in compiled.compile().as_text()


@pytest.mark.parametrize("device_resident", [False, True])
def test_feeder_steps_stacks_the_batches_of_single_steps(device_resident):
  images = (np.arange(20 * 4 * 4 * 1) % 251).astype(np.uint8).reshape(20, 4, 4, 1)
  mesh = sharding.make_mesh()
  feeder = loader.make_feeder(images, 3, 8, mesh, device_resident)
  stacked = feeder.steps(1, 3)  # Steps 1, 2 (the epoch's last whole batch) and 3 (the next epoch's first).
  singles = [feeder(step) for step in (1, 2, 3)]
  if device_resident:
    np.testing.assert_array_equal(stacked[0], images)
    assert stacked[1].sharding == feeder.stacked_sharding[1]
    stacked, singles = stacked[1], [single[1] for single in singles]
  else:
    assert stacked.sharding == feeder.stacked_sharding
  np.testing.assert_array_equal(stacked, np.stack(singles))
  assert stacked.shape[:2] == (3, 8)
  # The batch axis is split over the 4 devices, the step axis is not.
  assert {shard.data.shape[:2] for shard in stacked.addressable_shards} == {(3, 2)}
  first = np.sort(loader.batch_indices(3, 1, 20, 8))
  np.testing.assert_array_equal(stacked[0], first if device_resident else images[first])


def test_two_steps_per_call_train_the_state_single_steps_do(single_steps, tmp_path):
  reference_state, reference_records = single_steps
  state = train.train_and_evaluate(_config(steps_per_call=2), str(tmp_path))
  assert int(state.step) == 6
  records = _records(tmp_path)
  assert [r["step"] for r in records] == [2, 4, 6]
  assert _checkpoint_steps(tmp_path) == [2, 4, 6]
  _assert_losses_equal(records, reference_records, {2, 4, 6})
  _assert_states_equal(state, reference_state)


def test_a_resume_from_a_step_between_multiples_of_k_continues_the_run(single_steps, tmp_path, caplog):
  # The device-resident feeder here, the host one above: both send k stacked steps.
  reference_state, reference_records = single_steps
  config = _config(steps_per_call=2, num_steps=3)
  config.data.device_resident = True
  train.train_and_evaluate(config, str(tmp_path))  # Dispatches of 2 steps, then 1: saved at 2 and 3.
  assert [r["step"] for r in _records(tmp_path)] == [2, 3]
  assert _checkpoint_steps(tmp_path) == [2, 3]

  config.train.num_steps = 6
  with caplog.at_level("INFO"):
    state = train.train_and_evaluate(config, str(tmp_path))  # From step 3: 1 step, then 2.
  assert "Resuming from the checkpoint at step 3." in caplog.text
  assert int(state.step) == 6
  records = _records(tmp_path)
  assert [r["step"] for r in records] == [2, 3, 4, 6]
  assert _checkpoint_steps(tmp_path) == [3, 4, 6]  # max_checkpoints = 3.
  _assert_losses_equal(records, reference_records, {2, 4, 6})
  _assert_states_equal(state, reference_state)


@pytest.mark.parametrize(
  "objective, overrides",
  [
    ("daae", {"loss__adversarial_scheme": "phases", "data__device_resident": True}),
    ("dvae", {"data__device_resident": False}),
  ],
)
def test_dispatches_of_k_steps_give_the_bits_of_single_steps(tiny_config, objective, overrides):
  # The tests above train the DAAE's joint scheme through the whole loop; here the dispatches of the other steps.
  config = tiny_config(objective, train__steps_per_call=2, **overrides)
  run, batch_size = experiment.build(config), config.train.batch_size
  images = data.load_train_images(config.data)
  feeder = loader.make_feeder(images, config.seed, batch_size, run.mesh, config.data.device_resident)
  functions = train._step_functions(run, feeder)
  example = loader.batch_at(images, config.seed, 0, batch_size)
  singles, stacked = experiment.initial_state(run, example), experiment.initial_state(run, example)  # Donated.
  for step in range(4):
    singles, single_metrics = functions[1](singles, feeder(step), run.step_key)
  for first in (0, 2):
    stacked, stacked_metrics = functions[2](stacked, feeder.steps(first, 2), run.step_key)
  assert int(stacked.step) == 4
  _assert_states_equal(stacked, singles)
  assert jax.device_get(stacked_metrics) == jax.device_get(single_metrics)


@pytest.mark.parametrize(
  "overrides, named",
  [
    (
      {"steps_per_call": 4},
      "train.log_every_steps=2, train.checkpoint_every_steps=2, train.figures_every_steps=6 are not a multiple",
    ),
    ({"steps_per_call": 2, "figures_every_steps": 5}, "train.figures_every_steps=5 is not a multiple"),
    ({"steps_per_call": 3, "log_every_steps": 3, "figures_every_steps": 9}, "train.checkpoint_every_steps=2 is"),
  ],
)
def test_intervals_that_are_not_multiples_of_steps_per_call_are_refused(overrides, named):
  config = _config(**overrides)
  with pytest.raises(InputError) as error:
    config_lib.validate(config)
  message = str(error.value)
  assert named in message and f"train.steps_per_call={config.train.steps_per_call}" in message
  assert "\n" not in message


@pytest.mark.parametrize("value", [0, -2])
def test_steps_per_call_below_one_is_refused_before_the_intervals_are_divided(value):
  with pytest.raises(InputError, match=f"^train.steps_per_call={value} is not allowed; it must be > 0$"):
    config_lib.validate(_config(steps_per_call=value))


def test_intervals_that_are_multiples_of_steps_per_call_pass():
  config_lib.validate(_config(steps_per_call=2, num_steps=7))  # num_steps need not be one: a last single step.
  config_lib.validate(_config(steps_per_call=3, log_every_steps=3, checkpoint_every_steps=6, figures_every_steps=9))
