"""One training run per workdir: ``<workdir>/run.lock`` names the host, pid and start time of the run that holds it.

A second run on a live workdir stops with one line naming the holder, before it touches anything. A lock left by
a process that is gone is taken over with a warning: on the same host when that pid no longer runs, and under
SLURM when it belongs to this very job (a requeued job restarts on whatever node it gets).

On a shared file system or gs:// the lock is seen by every host, but a dead holder on *another* host cannot be
told from a live one: such a lock is refused, and the message says which file to delete once that run is known
to be gone. Creating the file is atomic on a local or NFS disk (``O_EXCL``); on gs:// it is a read then a write,
which two runs started within the same second could both pass.
"""

import json
import os
import socket
import time

from absl import logging

from dae_jax import storage
from dae_jax.errors import InputError

LOCK_FILE = "run.lock"


def _me() -> dict:
  return {
    "host": socket.gethostname(),
    "pid": os.getpid(),
    "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
  }


def is_stale(holder: dict, me: dict) -> bool:
  if holder.get("slurm_job_id") and holder.get("slurm_job_id") == me["slurm_job_id"]:
    return True
  return holder.get("host") == me["host"] and not storage.alive(int(holder.get("pid", -1)))


def _create_exclusively(path, text: str) -> bool:
  if storage.is_remote(path):
    if path.exists():
      return False
    path.write_text(text)
    return True
  try:
    descriptor = os.open(os.fspath(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  try:
    with os.fdopen(descriptor, "w") as f:
      f.write(text)
  except OSError:  # A full disk: an empty lock would name no holder and refuse every later run.
    os.unlink(os.fspath(path))
    raise
  return True


class WorkdirLock:
  """``with WorkdirLock(workdir):`` holds the workdir's lock for the block."""

  def __init__(self, workdir):
    self.path = storage.path(workdir) / LOCK_FILE
    self._me = _me()

  def __enter__(self):
    try:
      self._take()
    except OSError as error:  # The lock is the run's first write: a workdir that cannot hold files fails here.
      raise storage.unwritable("--workdir", self.path.parent, error) from None
    return self

  def _take(self) -> None:
    self.path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(self._me)
    while not _create_exclusively(self.path, text):
      try:
        holder = json.loads(self.path.read_text())
      except (OSError, ValueError):
        holder = {}
      if not is_stale(holder, self._me):
        raise InputError(
          f"--workdir={os.fspath(self.path.parent)!r} is in use by pid {holder.get('pid', '?')} on "
          f"{holder.get('host', '?')} since {holder.get('started', '?')}; wait for that run, or delete "
          f"{os.fspath(self.path)} if it is gone"
        )
      logging.warning("Taking over the lock of pid %s on %s, which is gone.", holder.get("pid"), holder.get("host"))
      self.path.unlink(missing_ok=True)

  def __exit__(self, *exc_info):
    try:
      if json.loads(self.path.read_text()).get("pid") == self._me["pid"]:
        self.path.unlink(missing_ok=True)
    except (OSError, ValueError):
      pass
