import jax
import numpy as np

from dae_jax import checkpointing, experiment
from dae_jax.data import faces


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
