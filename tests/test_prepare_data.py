"""Preparing data once and training from each file-based form, through the command lines."""

import json
import os
import subprocess
import sys

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
