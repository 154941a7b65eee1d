"""Bad input through the command line: one line on stderr, exit code 2, no traceback (issue 10, item 5).

One subprocess per bad input, since a run stops at the first; each fails before any step (~2 s).
"""

import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from dae_jax import workdir_lock
from dae_jax.errors import InputError

from conftest import REPO

TINY = "--config=configs/dae.py:tiny"


def _main(*args):
  return subprocess.run(
    [sys.executable, "-m", "dae_jax.main", *args], cwd=REPO, capture_output=True, text=True, timeout=120
  )


def _config_file(tmp_path, *body: str) -> str:
  """A config file whose ``get_config`` body (from line 5) is ``body``, one string a line."""
  path = tmp_path / "my_config.py"
  path.write_text("\n".join(["from dae_jax import config_lib", "", "", "def get_config():", *body, ""]))
  return str(path)


def _images(tmp_path, name: str, content) -> list:
  path = tmp_path / name
  if isinstance(content, bytes):
    path.write_bytes(content)
  else:
    np.save(path, content, allow_pickle=True)
  return ["--config.data.source=images", f"--config.data.path={path}", f"--config.data.cache_dir={tmp_path / 'c'}"]


def _with_nan(array: np.ndarray) -> np.ndarray:
  array = array.copy()
  array[1, 5, 6], array[2, 0, 0] = np.nan, np.inf
  return array


def _blocker(tmp_path):
  (tmp_path / "blocker").write_text("a file where a folder is wanted")
  return tmp_path / "blocker"


_FACES = np.full((4, 40, 40), 0.5, np.float32)


# Each case: (tmp_path -> the arguments after a default --workdir, what the error line holds; {tmp} is tmp_path).
CASES = {
  "config_syntax_error": (
    lambda t: ["--config=" + _config_file(t, "  config = config_lib.default_config(", "  return config")],
    "my_config.py line 5: SyntaxError: ",
  ),
  "config_name_error": (
    lambda t: ["--config=" + _config_file(t, "  return config_lib.default_confg()")],
    "my_config.py line 5: AttributeError: module 'dae_jax.config_lib' has no attribute 'default_confg'",
  ),
  "config_file_sets_an_unknown_key": (
    lambda t: ["--config=" + _config_file(t, "  c = config_lib.default_config()", "  c.model.foo = 1", "  return c")],
    "config key 'model.foo' is not one dae_jax knows (config_lib.default_config); model has architecture",
  ),
  "nan_sigma": (
    lambda t: [TINY, "--config.noise.sigma=nan"],
    "noise.sigma=nan is not allowed; it must be a finite number > 0",
  ),
  "inf_learning_rate": (
    lambda t: [TINY, "--config.optim.learning_rate=inf"],
    "optim.learning_rate=inf is not allowed; it must be a finite number > 0",
  ),
  "misspelt_config_flag": (
    lambda t: [TINY, "--config.data.path=x", "--config.data.pth=y"],
    '--config.data.pth: unknown config key \'pth\'. Did you mean "path" instead of "pth"?',
  ),
  "misspelt_flag": (lambda t: [TINY, "--workdirr=x"], "--workdirr: unknown flag; did you mean --workdir?"),
  "corrupt_npz": (
    lambda t: [TINY, *_images(t, "x.npz", b"PK\x03\x04 garbage, not a zip")],
    "cannot be read as an array",
  ),
  "garbage_npy": (lambda t: [TINY, *_images(t, "x.npy", b"garbage")], "is neither a .npy nor a .npz file"),
  "object_npy": (
    lambda t: [TINY, *_images(t, "x.npy", np.array([{"a": 1}, None], dtype=object))],
    "holds an array of Python objects (dtype object), which is never unpickled",
  ),
  "nan_pixels": (
    lambda t: [TINY, *_images(t, "x.npy", _with_nan(_FACES))],
    "holds 2 non-finite values (NaN or inf), the first at index (1, 5, 6)",
  ),
  "cache_dir_is_a_file": (
    lambda t: [TINY, *_images(t, "x.npy", _FACES), f"--config.data.cache_dir={_blocker(t)}"],
    "data.cache_dir='{tmp}/blocker' cannot be created or written: a file is in the way (File exists)",
  ),
  "workdir_is_a_file": (
    lambda t: [TINY, f"--workdir={_blocker(t)}"],
    "--workdir='{tmp}/blocker' cannot be created or written: a file is in the way (File exists)",
  ),
  "workdir_under_a_file": (
    lambda t: [TINY, f"--workdir={_blocker(t) / 'run'}"],
    "--workdir='{tmp}/blocker/run' cannot be created or written: a file is in the way (Not a directory)",
  ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_input_is_one_line_exit_2_and_no_traceback(tmp_path, case):
  arguments, expected = CASES[case]
  # A later --workdir wins in absl, so the cases that test the workdir give theirs after this one.
  result = _main(f"--workdir={tmp_path / 'run'}", *arguments(tmp_path))
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and expected.format(tmp=tmp_path) in last, result.stderr[-3000:]
  errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
  assert errors == [last]


@pytest.mark.slow
def test_the_line_is_all_that_stderr_holds_when_the_config_fails(tmp_path):
  bad = _config_file(tmp_path, "  return config_lib.default_config(")
  result = _main(f"--config={bad}", f"--workdir={tmp_path / 'run'}")
  assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
  assert result.stderr.startswith(f"error: --config={bad}: {bad} line 5: SyntaxError: ")


def test_a_full_disk_at_the_lock_is_one_line_naming_the_workdir(tmp_path, monkeypatch):
  real_open = os.open

  def full_disk(path, flags, mode=0o777):
    if str(path).endswith(workdir_lock.LOCK_FILE):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return real_open(path, flags, mode)

  monkeypatch.setattr(os, "open", full_disk)
  with pytest.raises(InputError) as error, workdir_lock.WorkdirLock(str(tmp_path / "run")):
    pass
  assert str(error.value) == (
    f"--workdir={str(tmp_path / 'run')!r} cannot be created or written: No space left on device at "
    f"{tmp_path / 'run' / workdir_lock.LOCK_FILE}"
  )


def test_a_lock_whose_write_fails_is_removed_so_it_cannot_block_later_runs(tmp_path, monkeypatch):
  real_fdopen = os.fdopen

  class FullDisk:
    def __init__(self, descriptor, *args):
      self._file = real_fdopen(descriptor, *args)

    def __enter__(self):
      return self

    def __exit__(self, *exc_info):
      self._file.close()

    def write(self, text):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  with monkeypatch.context() as patch:
    patch.setattr(os, "fdopen", FullDisk)
    with pytest.raises(InputError, match=r"cannot be created or written: No space left on device$"):
      workdir_lock.WorkdirLock(str(tmp_path / "run")).__enter__()
  assert not (tmp_path / "run" / workdir_lock.LOCK_FILE).exists()
  with workdir_lock.WorkdirLock(str(tmp_path / "run")):  # The next run takes the workdir as usual.
    assert (tmp_path / "run" / workdir_lock.LOCK_FILE).is_file()
