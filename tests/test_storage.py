"""Atomic whole-file writes, and what a write killed half way leaves behind."""

import os
import stat
import subprocess
import sys

from dae_jax import storage


def test_write_bytes_makes_the_folders_and_replaces_the_file_whole(tmp_path):
  target = tmp_path / "a" / "b" / "f.bin"
  storage.write_bytes(target, b"first")
  storage.write_bytes(target, b"second")
  assert target.read_bytes() == b"second"
  assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]  # No temporary left.


def test_only_the_temporaries_of_dead_processes_are_removed(tmp_path):
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  (tmp_path / f".fig.png.{dead.pid}.tmp").write_bytes(b"half")
  (tmp_path / f".fig.png.{os.getpid()}.tmp").write_bytes(b"being written")
  (tmp_path / "fig.png").write_bytes(b"done")
  assert storage.remove_stale_temporaries(tmp_path) == [f".fig.png.{dead.pid}.tmp"]
  assert sorted(p.name for p in tmp_path.iterdir()) == [f".fig.png.{os.getpid()}.tmp", "fig.png"]
  assert storage.remove_stale_temporaries(tmp_path / "missing") == []


def test_local_paths_become_absolute_and_urls_stay_as_given():
  assert str(storage.path("gs://bucket/run")) == "gs://bucket/run"
  assert str(storage.path("rel")) == os.path.join(os.getcwd(), "rel")


def test_outputs_are_readable_by_all_whatever_the_umask(tmp_path):
  kept = tmp_path / "kept"
  kept.mkdir(mode=0o700)  # A folder the user made stays as they made it.
  previous = os.umask(0o077)
  try:
    storage.write_bytes(kept / "a" / "b" / "f.png", b"png")
    storage.write_text(kept / "g.txt", "text")
  finally:
    os.umask(previous)

  def mode(path):
    return stat.S_IMODE(path.stat().st_mode)

  assert mode(kept / "a" / "b" / "f.png") == 0o644 and mode(kept / "g.txt") == 0o644
  assert mode(kept / "a") == 0o755 and mode(kept / "a" / "b") == 0o755
  assert mode(kept) == 0o700
