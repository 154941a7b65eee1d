"""Where a run's files live: a local directory or a ``gs://`` URL, both through ``etils.epath``.

Every output is written whole and atomically: locally to a temporary file renamed into place (a reader never
sees half a file, and a kill leaves at most a ``.*.tmp`` file), on GCS as one object upload, which is atomic by
itself. Without TensorFlow, epath reaches gs:// through gcsfs; with it, through ``tf.io.gfile`` unless
``EPATH_USE_TF=false``.
"""

import errno
import io
import os

from etils import epath

from dae_jax.errors import InputError

# Local outputs are readable by everyone who can reach the workdir, as a shared results folder should be.
FILE_MODE, DIRECTORY_MODE = 0o644, 0o755


def is_remote(location) -> bool:
  return "://" in os.fspath(location)


def path(location) -> epath.Path:
  """The location as an epath: URLs as given, local paths made absolute (orbax needs them so)."""
  if is_remote(location):
    return epath.Path(location)
  return epath.Path(os.path.abspath(os.path.expanduser(os.fspath(location))))


def make_dirs(directory) -> None:
  """``mkdir -p``; locally, each folder it creates is DIRECTORY_MODE whatever the umask (GCS has no modes)."""
  directory = path(directory)
  if is_remote(directory):
    directory.mkdir(parents=True, exist_ok=True)
    return
  missing = []
  while not directory.exists():
    missing.append(directory)
    directory = directory.parent
  for folder in reversed(missing):
    try:
      folder.mkdir()
    except FileExistsError:
      continue  # Another process made it first; its modes are its own.
    os.chmod(folder, DIRECTORY_MODE)


def write_bytes(target: epath.Path, data: bytes) -> None:
  target = path(target)
  make_dirs(target.parent)
  if is_remote(target):
    target.write_bytes(data)
    return
  temporary = target.parent / f".{target.name}.{os.getpid()}.tmp"
  temporary.write_bytes(data)
  # The temporary's mode is what the rename keeps: set it here, or a restrictive umask (0077 on many clusters)
  # makes every output unreadable to the rest of the group.
  os.chmod(temporary, FILE_MODE)
  temporary.replace(target)


def remove_stale_temporaries(directory) -> list:
  """Deletes the temporary files ``write_bytes`` left in ``directory`` when its process was killed mid-write
  (those of live processes are being written right now); returns their names."""
  removed = []
  directory = path(directory)
  if is_remote(directory) or not directory.is_dir():
    return removed  # Uploads leave no temporary object behind.
  for candidate in directory.glob(".*.tmp"):
    pid = candidate.name.rsplit(".", 2)[-2]
    if pid.isdigit() and not alive(int(pid)):
      candidate.unlink(missing_ok=True)
      removed.append(candidate.name)
  return removed


def alive(pid: int) -> bool:
  """Whether process ``pid`` runs on this host."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def write_text(target: epath.Path, text: str) -> None:
  write_bytes(target, text.encode())


def encoded(save, **kwargs) -> bytes:
  """The bytes ``save(file, **kwargs)`` writes to a file object: for savers that want a file (PIL, numpy,
  matplotlib), so that the result can be written atomically anywhere."""
  buffer = io.BytesIO()
  save(buffer, **kwargs)
  return buffer.getvalue()


def unwritable(name: str, location, error: OSError) -> InputError:
  """The one-line error for a directory that cannot be created or written, e.g. ``unwritable("--workdir", ...)``:
  names the location as given, the reason, and the path that failed when that is another one."""
  reason = error.strerror or str(error)
  if error.errno in (errno.EEXIST, errno.ENOTDIR):
    reason = f"a file is in the way ({reason})"
  failed = os.fspath(error.filename) if error.filename is not None else ""
  where = f" at {failed}" if failed and failed != os.fspath(location) else ""
  return InputError(f"{name}={os.fspath(location)!r} cannot be created or written: {reason}{where}")
