"""Orbax checkpoints of the train state in ``<workdir>/checkpoints/<step>``.

Saves are asynchronous and atomic on local disk: a run killed mid-save leaves only a temporary directory that
``latest_step`` ignores, so a restart always resumes from the last complete checkpoint. Only arrays are saved:
hyperparameters come from the config of the run that restores.
"""

import time
from typing import Any

import jax
import orbax.checkpoint as ocp

from dae_jax import storage


def manager(workdir: str, max_to_keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=True)
  return ocp.CheckpointManager(storage.path(workdir) / "checkpoints", options=options)


def save(checkpoints: ocp.CheckpointManager, state) -> None:
  step = int(state.step)
  meta = {"step": step, "saved_unix_time": time.time()}
  checkpoints.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))


def restore_latest(checkpoints: ocp.CheckpointManager, like: Any) -> Any | None:
  """The latest checkpoint laid out (shapes, dtypes, shardings) like the state ``like``; None if there is none."""
  step = checkpoints.latest_step()
  if step is None:
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  restored = checkpoints.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
  return restored["state"]
