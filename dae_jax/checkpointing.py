"""Orbax checkpoints of the train state in ``<workdir>/checkpoints/<step>``.

Saves are asynchronous and atomic on local disk: a run killed mid-save leaves only a temporary directory that
``latest_step`` ignores, so a restart always resumes from the last complete checkpoint. Only arrays are saved:
hyperparameters come from the config of the run that restores.

A checkpoint damaged after it was committed (a truncated or overwritten file, a deleted manifest or metadata, an
emptied folder) is found when it is restored: orbax and tensorstore report most of these, and a fingerprint of
the state saved beside it (``meta``) catches the bytes overwritten in place that decompress without complaint.
Restoring then falls back to the newest older step that restores; training moves the damaged ones aside to
``<step>.corrupt`` (never deleted) so that it can save those steps again.
"""

import contextlib
import re
import sys
import time
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from dae_jax import storage
from dae_jax.errors import CheckpointError

CORRUPT_SUFFIX = ".corrupt"
_REASON_CHARACTERS = 200
# What every committed save writes (the state's tree and root OCDBT manifest, our JSON).
_PIECES = ("state/_METADATA", "state/manifest.ocdbt", "meta/metadata")


class NoRestorableCheckpoint(CheckpointError):
  """Every checkpoint in the workdir is damaged."""


def manager(workdir: str, max_to_keep: int, read_only: bool = False) -> ocp.CheckpointManager:
  """Read-only managers (sample, eval) neither create folders nor delete old steps."""
  if read_only:
    options = ocp.CheckpointManagerOptions(read_only=True, save_interval_steps=0, max_to_keep=None, create=False)
  else:
    # cleanup_tmp_directories: a save killed half way leaves a temporary folder locally, and on GCS a step
    # without its commit_success.txt; both are removed before this run saves that step again.
    options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, enable_async_checkpointing=True, cleanup_tmp_directories=True
    )
  return ocp.CheckpointManager(storage.path(workdir) / "checkpoints", options=options)


def _leaf_bits(x: jax.Array) -> jax.Array:
  if x.dtype == jnp.bool_:
    return x.astype(jnp.uint32)
  unsigned = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}[x.dtype.itemsize]
  return jax.lax.bitcast_convert_type(x, unsigned).astype(jnp.uint32).ravel()


@jax.jit
def _fingerprints(tree) -> jax.Array:
  # Odd weights by position: any one changed element changes its leaf's sum mod 2^32, and so does a swap.
  sums = []
  for leaf in jax.tree.leaves(tree):
    bits = _leaf_bits(leaf)
    weights = jnp.arange(bits.size, dtype=jnp.uint32) * jnp.uint32(2) + jnp.uint32(1)
    sums.append(jnp.sum(bits * weights, dtype=jnp.uint32))
  return jnp.stack(sums)


def fingerprint(state) -> list[int]:
  """One uint32 per leaf of ``state``, from its exact bits; the same on every process (the state is replicated)."""
  sums = _fingerprints(state)
  return [int(v) for v in np.asarray(sums.addressable_data(0))]


def save(checkpoints: ocp.CheckpointManager, state) -> None:
  step = int(state.step)
  meta = {"step": step, "saved_unix_time": time.time(), "fingerprint": fingerprint(state)}
  checkpoints.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))


def _check_fingerprint(state, meta: dict) -> None:
  expected = meta.get("fingerprint")
  if expected is None:  # Saved before fingerprints were recorded: nothing to compare with.
    return
  actual = fingerprint(state)
  if actual != expected:
    paths = [jax.tree_util.keystr(p, simple=True, separator="/") for p, _ in jax.tree_util.tree_leaves_with_path(state)]
    changed = [path for path, a, e in zip(paths, actual, expected) if a != e] or ["the number of arrays"]
    raise ValueError(f"the restored arrays differ from the fingerprint saved with them ({', '.join(changed[:3])})")


def _check_pieces(step_directory) -> None:
  """A folder without the files every save writes fails here, before tensorstore reads anything: some of its
  failures otherwise print tracebacks from threads that no caller can catch."""
  for piece in _PIECES:
    if not (step_directory / piece).exists():
      raise FileNotFoundError(f"{piece} is missing")


@contextlib.contextmanager
def _unraisables_dropped_on_failure():
  """When one array read fails, orbax's gather stops and closes its event loop while tensorstore still answers the
  other reads: each answer ends as an "unraisable" traceback (60 for one truncated file). They say nothing the
  failure's own line does not, so a failed restore drops them; a restore that succeeds reports them as usual."""
  caught, previous = [], sys.unraisablehook
  sys.unraisablehook = caught.append
  try:
    yield
  except BaseException:
    logging.debug("Dropped %d unraisable errors of a failed restore.", len(caught))
    raise
  else:
    for unraisable in caught:
      previous(unraisable)
  finally:
    sys.unraisablehook = previous


def _restore_step(checkpoints: ocp.CheckpointManager, step: int, abstract) -> Any:
  _check_pieces(checkpoints.directory / str(step))
  args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
  with _unraisables_dropped_on_failure():
    restored = checkpoints.restore(step, args=args)
  _check_fingerprint(restored["state"], restored["meta"] or {})
  return restored["state"]


_STATUS_CODE = re.compile(r"^[A-Z_]+: ")
_OCDBT_LOCATION = re.compile(r' in OCDBT database at [^"]*"[^"]*"')


def failure_reason(error: BaseException) -> str:
  """A short line for why a restore failed: tensorstore's own status line where there is one (orbax wraps it in
  a generic message), else the error's first line, without the spec dumps that follow."""
  chain, seen = [], error
  while seen is not None and len(chain) < 10:
    chain.append(seen)
    seen = seen.__cause__ or seen.__context__
  lines = [(str(e).strip().splitlines() or [type(e).__name__])[0] for e in chain]
  line = next((line for line in reversed(lines) if _STATUS_CODE.match(line)), lines[0])
  line = line.split(" [tensorstore_spec")[0].split(". See full TensorStore details")[0].strip("'\"")
  line = _OCDBT_LOCATION.sub("", line)  # The warning names the step folder already.
  return line if len(line) <= _REASON_CHARACTERS else line[: _REASON_CHARACTERS - 3] + "..."


def _aside_path(directory, step: int):
  target = directory / f"{step}{CORRUPT_SUFFIX}"
  number = 1
  while target.exists():
    number += 1
    target = directory / f"{step}{CORRUPT_SUFFIX}.{number}"
  return target


def _set_aside(checkpoints: ocp.CheckpointManager, failures: list) -> None:
  """Process 0 moves each damaged step folder aside and says so; then every process lists the steps again."""
  if jax.process_index() == 0:
    for step, reason in failures:
      target = _aside_path(checkpoints.directory, step)
      (checkpoints.directory / str(step)).rename(target)
      logging.warning("The checkpoint at step %d cannot be restored (%s); moved it to %s.", step, reason, target)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("dae_jax: damaged checkpoints set aside")
  checkpoints.reload()


def restore_latest(checkpoints: ocp.CheckpointManager, like: Any, read_only: bool = False) -> Any | None:
  """The newest checkpoint that restores, laid out (shapes, dtypes, shardings) like the state ``like``; None if
  there is none. Damaged newer steps are logged and, unless ``read_only``, moved aside.

  Raises NoRestorableCheckpoint, moving nothing, when every step fails: then the cause is more likely the code
  or the environment than the files, and a rerun must not silently start from scratch.
  """
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  failures = []
  for step in sorted(checkpoints.all_steps(), reverse=True):
    try:
      state = _restore_step(checkpoints, step, abstract)
    except Exception as e:  # orbax and tensorstore raise Exception, ValueError, KeyError, OSError... alike.
      failures.append((step, failure_reason(e)))
      continue
    if read_only:
      for failed, reason in failures:
        logging.warning("The checkpoint at step %d cannot be restored (%s); skipped it.", failed, reason)
    elif failures:
      _set_aside(checkpoints, failures)
    return state
  if failures:
    details = "; ".join(f"step {step}: {reason}" for step, reason in failures)
    raise NoRestorableCheckpoint(f"no checkpoint in {checkpoints.directory} can be restored ({details})")
  return None
