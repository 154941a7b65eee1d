"""k training steps in one dispatch: a step ``(state, batch, key) -> (state, metrics)`` scanned over k batches.

On an accelerator a small step can finish before Python has dispatched the next one; a ``lax.scan`` over k
stacked batches runs k steps per dispatch and per host-device exchange, as score_sde's ``pmap(scan(step))``
does. The state after the scan is the state after k single steps: each step draws its noise from
``state.step``, which the scan carries, so nothing about the run depends on k.

The metrics returned are those of the scan's last step, not the mean over the k steps: the line logged at step
s then reports step s's loss whatever k is. A non-finite value in an earlier step of the k is not lost: it has
reached the parameters, so the last step's loss and the state checked before a save are non-finite too.

Dispatches start on multiples of k, so log, checkpoint and figure steps (multiples of k, config_lib checks)
fall at their ends: ``calls`` splits a range of steps into dispatches of k, with single steps only where the
range does not start or end on a multiple of k (a resume from a checkpoint taken with another k).
"""

from collections.abc import Callable, Iterator

import jax


def scan_steps(step_fn: Callable) -> Callable:
  """``(state, batches, key) -> (state, metrics of the last step)`` for ``step_fn(state, batch, key)``, where
  every leaf of ``batches`` has the step axis first ([k, batch, ...])."""

  def steps(state, batches, key: jax.Array):
    def body(state, batch):
      return step_fn(state, batch, key)

    state, metrics = jax.lax.scan(body, state, batches)
    return state, jax.tree.map(lambda m: m[-1], metrics)

  return steps


def calls(start: int, stop: int, k: int) -> Iterator[tuple[int, int]]:
  """``(first step, number of steps)`` of each dispatch covering steps [start, stop): k at a time from the first
  multiple of k, single steps before it and after the last whole k."""
  step = start
  while step < stop:
    size = k if step % k == 0 and step + k <= stop else 1
    yield step, size
    step += size
