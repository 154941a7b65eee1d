import json
import shutil

import jax
import ml_collections
import numpy as np
import pytest

from dae_jax import checkpointing, experiment, metrics_io, pretrained
from dae_jax.data import faces
from dae_jax.errors import CheckpointError, InputError


def test_restore_returns_exactly_what_was_saved_and_none_when_empty(tiny_config, tmp_path):
  config = tiny_config("daae")
  run = experiment.build(config)
  state = experiment.initial_state(run, faces.load(32, 1)[:8])
  manager = checkpointing.manager(str(tmp_path), 2)
  assert checkpointing.restore_latest(manager, state) is None
  saved = state.replace(step=state.step + 7, ae_params=jax.tree.map(lambda p: p + 1.5, state.ae_params))
  checkpointing.save(manager, saved)
  manager.wait_until_finished()
  restored = checkpointing.restore_latest(manager, state)
  manager.close()
  assert int(restored.step) == 7
  jax.tree.map(np.testing.assert_array_equal, jax.tree.leaves(saved), jax.tree.leaves(restored))
  assert restored.ae_params["encoder"]["Dense_0"]["kernel"].sharding.is_equivalent_to(
    state.ae_params["encoder"]["Dense_0"]["kernel"].sharding, 2
  )


def _saved_steps(tiny_config, directory, steps):
  """A manager in ``directory`` holding the DAAE state at each of ``steps`` (parameters shifted by the step)."""
  run = experiment.build(tiny_config("daae"))
  state = experiment.initial_state(run, faces.load(32, 1)[:8])
  checkpoints = checkpointing.manager(str(directory), 5)
  for step in steps:
    checkpointing.save(
      checkpoints, state.replace(step=step, ae_params=jax.tree.map(lambda p, s=step: p + s, state.ae_params))
    )
  checkpoints.wait_until_finished()
  return checkpoints, state


def test_a_damaged_latest_step_is_skipped_read_only_and_moved_aside_otherwise(tiny_config, tmp_path, caplog):
  checkpoints, like = _saved_steps(tiny_config, tmp_path, [1, 2])
  (tmp_path / "checkpoints" / "2" / "state" / "_METADATA").unlink()
  with caplog.at_level("WARNING"):
    assert int(checkpointing.restore_latest(checkpoints, like, read_only=True).step) == 1
  assert "The checkpoint at step 2 cannot be restored (state/_METADATA is missing); skipped it." in caplog.text
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "2"]

  (tmp_path / "checkpoints" / "2.corrupt").mkdir()  # Left by an earlier damage: kept, so another name is used.
  restored = checkpointing.restore_latest(checkpoints, like)
  assert int(restored.step) == 1
  np.testing.assert_array_equal(
    restored.ae_params["encoder"]["Dense_0"]["kernel"], like.ae_params["encoder"]["Dense_0"]["kernel"] + 1
  )
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "2.corrupt", "2.corrupt.2"]
  assert not (tmp_path / "checkpoints" / "2.corrupt.2" / "state" / "_METADATA").exists()
  assert checkpoints.all_steps() == [1]
  checkpointing.save(checkpoints, like.replace(step=2))  # The step can be saved again.
  checkpoints.wait_until_finished()
  assert checkpoints.all_steps() == [1, 2]
  checkpoints.close()


def test_arrays_replaced_behind_orbax_are_caught_by_the_fingerprint(tiny_config, tmp_path, caplog):
  checkpoints, like = _saved_steps(tiny_config, tmp_path / "a", [1, 2])
  other, _ = _saved_steps(tiny_config, tmp_path / "b", [3])
  other.close()
  # Valid arrays of another state under step 2's metadata: nothing orbax or tensorstore reads is damaged.
  target = tmp_path / "a" / "checkpoints" / "2" / "state"
  shutil.rmtree(target)
  shutil.copytree(tmp_path / "b" / "checkpoints" / "3" / "state", target)
  with caplog.at_level("WARNING"):
    assert int(checkpointing.restore_latest(checkpoints, like, read_only=True).step) == 1
  checkpoints.close()
  assert "step 2 cannot be restored (the restored arrays differ from the fingerprint saved with them (step, " in (
    caplog.text
  )


def test_every_step_damaged_is_one_error_naming_them_and_nothing_moves(tiny_config, tmp_path):
  checkpoints, like = _saved_steps(tiny_config, tmp_path, [1, 2])
  (tmp_path / "checkpoints" / "1" / "meta" / "metadata").unlink()
  shutil.rmtree(tmp_path / "checkpoints" / "2" / "state")
  with pytest.raises(CheckpointError) as error:
    checkpointing.restore_latest(checkpoints, like)
  checkpoints.close()
  assert isinstance(error.value, checkpointing.NoRestorableCheckpoint)
  assert str(error.value) == (
    f"no checkpoint in {tmp_path / 'checkpoints'} can be restored "
    "(step 2: state/_METADATA is missing; step 1: meta/metadata is missing)"
  )
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "2"]


def test_the_reason_is_tensorstores_status_line_without_its_spec():
  try:
    try:
      raise ValueError(
        'OUT_OF_RANGE: Error reading "a.b/0" in OCDBT database at local file "/w/checkpoints/4/state/": '
        'Requested byte range [1, 9) is not valid [tensorstore_spec[1]={"driver": "zarr"}]\nmore'
      )
    except ValueError as inner:
      raise Exception("Encountered error while reading array index: (0,). See full TensorStore details: x") from inner
  except Exception as outer:
    assert (
      checkpointing.failure_reason(outer)
      == 'OUT_OF_RANGE: Error reading "a.b/0": Requested byte range [1, 9) is not valid'
    )
  assert checkpointing.failure_reason(KeyError('Item "meta" was not found')) == 'Item "meta" was not found'
  long = checkpointing.failure_reason(ValueError("x" * 500))
  assert len(long) == 200 and long.endswith("...")


def test_only_the_keys_that_make_the_checkpoint_are_compared(tiny_config):
  dvae = tiny_config("dvae")
  recorded = ml_collections.ConfigDict(json.loads(dvae.to_json()))  # As config.json reads back: lists, not tuples.
  assert experiment.config_differences(dvae, recorded) == []
  assert experiment.config_differences(tiny_config("daae"), recorded) == [
    "model.objective: dvae in the workdir, daae given",
    "model.code_batchnorm: False in the workdir, True given",  # configs/daae.py turns it on; it changes parameters.
  ]
  changed = tiny_config("dvae", model__widths=(4, 8), data__channels=3, train__num_steps=99, optim__learning_rate=1.0)
  changed.chain.num_steps, changed.noise.sigma, changed.model.mlp_hidden = 50, 0.1, (7,)
  assert experiment.config_differences(changed, recorded) == [
    "data.channels: 1 in the workdir, 3 given",
    "model.widths: (8, 16) in the workdir, (4, 8) given",
  ]
  daae = tiny_config("daae")
  wider = tiny_config("daae", model__disc_hidden=(32, 32), model__disc_dropout=0.5)
  assert experiment.config_differences(wider, daae) == ["model.disc_hidden: (16, 16) in the workdir, (32, 32) given"]
  del recorded.model["latent_dim"]  # A config.json written before the key existed.
  assert experiment.config_differences(tiny_config("dvae", model__latent_dim=3), recorded) == []
  # Before model.code_batchnorm existed, no encoder had one: such a run does not fit a config that asks for it.
  del recorded.model["code_batchnorm"]
  assert experiment.config_differences(tiny_config("dvae"), recorded) == []
  assert experiment.config_differences(tiny_config("dae", model__code_batchnorm=True), recorded) == [
    "model.objective: dvae in the workdir, dae given",
    "model.code_batchnorm: False in the workdir, True given",
  ]


def test_restore_refuses_a_config_that_does_not_fit_before_reading_checkpoints(tiny_config, tmp_path):
  metrics_io.write_config(str(tmp_path), tiny_config("dvae"))
  with pytest.raises(InputError, match=r"^--config does not match the run in .*: model.objective: dvae in the"):
    experiment.restore(tiny_config("daae"), str(tmp_path))
  with pytest.raises(InputError, match="holds no checkpoint"):
    experiment.restore(tiny_config("dvae", train__num_steps=99), str(tmp_path))
  assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]  # Read-only: no checkpoints/ made.


def test_load_sampler_without_a_config_needs_the_runs_config_json(tmp_path):
  with pytest.raises(InputError, match=r"holds no config.json; give the run's directory or a config"):
    pretrained.load_sampler(str(tmp_path))
