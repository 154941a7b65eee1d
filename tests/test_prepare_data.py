"""Preparing data once and training from each file-based form, through the command lines."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
import fixtures

pytestmark = pytest.mark.slow


def _run(module, *args):
  return subprocess.run(
    [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ)
  )


def test_prepare_once_then_train_from_the_celeba_zip(tmp_path):
  fixtures.write_celeba_files(str(tmp_path))
  data_flags = [
    "--config.data.source=celeba_files",
    f"--config.data.path={tmp_path / 'img_align_celeba.zip'}",
    f"--config.data.cache_dir={tmp_path / 'cache'}",
  ]
  prepared = _run("dae_jax.prepare_data", "--config=configs/dvae.py:tiny", *data_flags)
  assert prepared.returncode == 0, prepared.stderr[-3000:]
  manifest = json.loads(prepared.stdout)
  assert manifest["count"] == 8 and manifest["source"] == "celeba_files" and manifest["size"] == 32
  assert os.path.exists(os.path.join(manifest["directory"], "images.npy"))
  # The held-out split too: training logs the prior match of a held-out batch.
  assert manifest["held_out"]["split"] == "test" and manifest["held_out"]["count"] >= 1

  trained = _run(
    "dae_jax.main",
    "--config=configs/dvae.py:tiny",
    *data_flags,
    "--config.train.num_steps=2",
    f"--workdir={tmp_path / 'run'}",
  )
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert "Preparing" not in trained.stderr and "Rebuilding" not in trained.stderr  # The cache was reused.
  assert (tmp_path / "run" / "checkpoints" / "2").is_dir()


def test_train_from_your_own_array(tmp_path):
  np.save(tmp_path / "faces.npy", fixtures.celeba_like_images(8))
  trained = _run(
    "dae_jax.main",
    "--config=configs/dae.py:tiny",
    "--config.data.source=images",
    f"--config.data.path={tmp_path / 'faces.npy'}",
    f"--config.data.cache_dir={tmp_path / 'cache'}",
    "--config.train.num_steps=2",
    f"--workdir={tmp_path / 'run'}",
  )
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert "Preparing" in trained.stderr


@pytest.mark.parametrize(
  "args,message",
  [
    (
      ["--config.data.source=images", "--config.data.path=/nonexistent/x.npy"],
      "data.path='/nonexistent/x.npy' does not exist",
    ),
    (["--config.data.source=images"], "data.source='images' needs data.path"),
  ],
)
def test_bad_data_input_is_one_line_and_exit_code_2(tmp_path, args, message):
  result = _run(
    "dae_jax.prepare_data", "--config=configs/dae.py:tiny", *args, f"--config.data.cache_dir={tmp_path / 'cache'}"
  )
  assert result.returncode == 2, result.stderr[-2000:]
  assert result.stderr.strip().splitlines()[-1] == f"error: {message}" or message in result.stderr.splitlines()[-1]
  assert not (tmp_path / "cache").exists()


def _temporaries(cache_dir) -> list:
  return sorted(p.name for p in cache_dir.iterdir() if ".tmp-" in p.name) if cache_dir.is_dir() else []


def test_a_prepare_killed_by_sigkill_leaves_an_orphan_that_the_next_prepare_removes(tmp_path):
  # Enough images that decoding takes about a second, while the temporary folder exists.
  images = np.random.default_rng(0).integers(0, 256, (4000, 64, 64, 3), dtype=np.uint8)
  np.save(tmp_path / "many.npy", images)
  cache_dir = tmp_path / "cache"
  args = [
    "--config=configs/dae.py:tiny",
    "--config.data.source=images",
    f"--config.data.path={tmp_path / 'many.npy'}",
    f"--config.data.cache_dir={cache_dir}",
    "--config.data.crop=0",
  ]
  process = subprocess.Popen(
    [sys.executable, "-m", "dae_jax.prepare_data", *args],
    cwd=REPO,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  deadline = time.time() + 60
  while not _temporaries(cache_dir) and time.time() < deadline and process.poll() is None:
    time.sleep(0.005)
  process.send_signal(signal.SIGKILL)
  process.wait()
  orphans = _temporaries(cache_dir)
  assert len(orphans) == 1 and f"-{process.pid}-" in orphans[0], f"the kill came too late: {orphans}"

  again = _run("dae_jax.prepare_data", *args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "Removed 1 temporary folder(s) of killed prepares" in again.stderr and orphans[0] in again.stderr
  assert _temporaries(cache_dir) == [] and json.loads(again.stdout)["count"] == 4000


def test_prepare_rebuilds_when_an_image_is_added_to_the_source_folder(tmp_path):
  fixtures.write_celeba_files(str(tmp_path / "src"), count=3)
  folder = tmp_path / "src" / "img_align_celeba"
  args = [
    "--config=configs/dae.py:tiny",
    "--config.data.source=images",
    f"--config.data.path={folder}",
    f"--config.data.cache_dir={tmp_path / 'cache'}",
  ]
  first = _run("dae_jax.prepare_data", *args)
  assert first.returncode == 0 and json.loads(first.stdout)["count"] == 3, first.stderr[-3000:]
  (folder / "000004.jpg").write_bytes((folder / "000001.jpg").read_bytes())
  second = _run("dae_jax.prepare_data", *args)
  assert second.returncode == 0, second.stderr[-3000:]
  assert "Rebuilding" in second.stderr and "source_files" in second.stderr
  manifest = json.loads(second.stdout)
  assert manifest["count"] == 4 and manifest["source_files"]["count"] == 4
