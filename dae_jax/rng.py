"""Every random stream of a run, derived by name from (seed, step), in this one module.

A stream is told apart by folding in a fixed number computed from its name, never by position. Mixing the two
ways collides: under JAX's partitionable threefry PRNG ``jax.random.split(k, n)[i]`` *is*
``jax.random.fold_in(k, i)``, which once made the flip key of a step equal its posterior key. Names make every
stream distinct, and adding one leaves the others unchanged.
"""

import zlib

import jax

# Keys made once per run, from the seed.
RUN_STREAMS = ("init", "train", "figures", "eval", "chain_study")
# Keys drawn anew at every training step, from the "train" key and the step number.
STEP_STREAMS = ("corrupt", "posterior", "gen_dropout", "prior", "disc_dropout", "flip")


def _stream_id(name: str) -> int:
  return zlib.crc32(name.encode()) & 0x7FFFFFFF


def named(key: jax.Array, name: str) -> jax.Array:
  """The sub-stream ``name`` of ``key``; any string names one."""
  return jax.random.fold_in(key, _stream_id(name))


def run_key(seed: int, name: str) -> jax.Array:
  """One of the run's base keys (``RUN_STREAMS``)."""
  if name not in RUN_STREAMS:
    raise ValueError(f"run stream {name!r} is not one of {', '.join(RUN_STREAMS)}")
  return named(jax.random.PRNGKey(seed), name)


def step_keys(train_key: jax.Array, step) -> dict:
  """``{name: key}`` for every stream of training step ``step`` (a traced step is fine): a pure function of
  (seed, step), so a resumed run draws exactly the noise an uninterrupted one would."""
  step_key = jax.random.fold_in(train_key, step)
  return {name: named(step_key, name) for name in STEP_STREAMS}
