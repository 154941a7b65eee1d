"""k training steps in one dispatch: a step ``(state, batch, key) -> (state, metrics)`` looped over k batches.

On an accelerator a small step can finish before Python has dispatched the next one; a loop over k stacked
batches runs k steps per dispatch and per host-device exchange, as score_sde's ``pmap(scan(step))`` does. The
state after the loop is the state after k single steps: each step draws its noise from ``state.step``, which the
loop carries, so nothing about the run depends on k.

Every dispatch, one step or k, runs the step as the body of the same loop, and the body is compiled alike
whatever the trip count, so ``train.steps_per_call`` = k gives the state k single steps give, bit for bit. A
step compiled outside a loop is not that step: XLA compiles a loop body apart from the top-level computation
(XLA:CPU, for one, puts only top-level convolutions into the layouts Eigen's fast kernels need, so the weight
gradients of a looped step are summed in another order; measured, up to ~2e-6 apart after 4 steps of the tiny
DAAE). XLA inlines a loop that runs once, so the loop is marked to be kept (``_KEEP_ONE_TRIP_LOOP``). The trip
count is a constant, not a traced argument: an XLA:GPU loop whose trip count is unknown when compiling waits on
the host after each iteration to read the condition, which would stop the host from dispatching ahead.

The metrics returned are those of the loop's last step, not the mean over the k steps: the line logged at step
s then reports step s's loss whatever k is. A non-finite value in an earlier step of the k is not lost: it has
reached the parameters, so the last step's loss and the state checked before a save are non-finite too.

Dispatches start on multiples of k, so log, checkpoint and figure steps (multiples of k, config_lib checks)
fall at their ends: ``calls`` splits a range of steps into dispatches of k, with single steps only where the
range does not start or end on a multiple of k (a resume from a checkpoint taken with another k).
"""

from collections.abc import Callable, Iterator

import jax
from jax.experimental.xla_metadata import set_xla_metadata
import jax.numpy as jnp

# The XLA frontend attribute (WhileLoopSimplifier) that keeps a loop of trip count 1 a loop. Were it ignored, the
# single steps would again differ from the k-step dispatches in the last bits, which tests/test_multi_step.py checks.
_KEEP_ONE_TRIP_LOOP = "skip-simplify-while-loops_trip-count-one"


def scan_steps(step_fn: Callable) -> Callable:
  """``(state, batches, key) -> (state, metrics of the last step)`` for ``step_fn(state, batch, key)``, where
  every leaf of ``batches`` has the step axis first ([k, batch, ...], k >= 1), as one ``lax.while_loop``."""

  def steps(state, batches, key: jax.Array):
    num_steps = jax.tree.leaves(batches)[0].shape[0]

    def batch_at(i):
      return jax.tree.map(lambda x: jax.lax.dynamic_index_in_dim(x, i, keepdims=False), batches)

    def body(carry):
      i, state, _ = carry
      return (i + 1, *step_fn(state, batch_at(i), key))

    # The loop carries the metrics so that it returns the last step's; these are overwritten in the first step.
    shapes = jax.eval_shape(step_fn, state, batch_at(0), key)[1]
    metrics = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    carry = jax.lax.while_loop(lambda carry: carry[0] < num_steps, body, (jnp.int32(0), state, metrics))
    _, state, metrics = set_xla_metadata(carry, **{_KEEP_ONE_TRIP_LOOP: True})
    return state, metrics

  return steps


def calls(start: int, stop: int, k: int) -> Iterator[tuple[int, int]]:
  """``(first step, number of steps)`` of each dispatch covering steps [start, stop): k at a time from the first
  multiple of k, single steps before it and after the last whole k."""
  step = start
  while step < stop:
    size = k if step % k == 0 and step + k <= stop else 1
    yield step, size
    step += size
