"""Stopping cleanly when asked: SIGTERM (preemption, scancel, TPU maintenance), SIGINT (Ctrl-C) and SIGUSR1
(what ``sbatch --signal`` sends ahead of the time limit).

The first signal asks the loop to finish its step, save a checkpoint there and exit 0, so nothing since the
last checkpoint is lost and the resumed run is the same as one never stopped. A second signal, while that save
runs, ends the process at once; orbax's atomic save then leaves at most a temporary folder, which resume ignores.

Several processes must all stop at the same step. JAX's own preemption service (started by
``jax.distributed.initialize``) hears a SIGTERM on any process and lets all of them agree on the step
(``reached_preemption_sync_point``), so there SIGINT and SIGUSR1 are passed on to it as a SIGTERM.
"""

import os
import signal
import threading

from absl import logging
import jax
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class StopRequest:
  """A context that catches the stop signals; ``requested(step)`` says whether to stop after ``step``."""

  def __enter__(self):
    self.reason = None
    self._several = jax.process_count() > 1
    self._previous = {}
    if threading.current_thread() is threading.main_thread():  # Python handles signals there only.
      handled = [s for s in SIGNALS if not (self._several and s == signal.SIGTERM)]
      self._previous = {s: signal.signal(s, self._handle) for s in handled}
    return self

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def _handle(self, signum, frame):
    del frame
    name = signal.Signals(signum).name
    if self.reason is not None:
      logging.warning("%s again while stopping: exiting at once.", name)
      signal.signal(signum, signal.SIG_DFL)
      os.kill(os.getpid(), signum)
      return
    self.reason = name
    logging.warning("%s: finishing this step, saving a checkpoint, then exiting.", name)
    if self._several:
      os.kill(os.getpid(), signal.SIGTERM)  # For JAX's preemption service, which every process hears.

  def requested(self, step: int) -> bool:
    if self._several:
      stop = multihost_utils.reached_preemption_sync_point(step)
      if stop and self.reason is None:
        self.reason = "SIGTERM"
      return stop
    return self.reason is not None
