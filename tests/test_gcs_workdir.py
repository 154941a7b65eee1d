"""A gs:// workdir end to end against a local GCS emulator that the test starts: train, kill -9 and resume,
sample, eval and load_sampler, with every output checked in the emulator's bucket."""

import os
import signal
import subprocess
import sys
import time

import gcs_emulator
import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
BUCKET = "dae-jax-test"


@pytest.fixture(scope="module")
def emulator():
  with gcs_emulator.serve(BUCKET) as url:
    yield {
      "STORAGE_EMULATOR_HOST": url,  # gcsfs (under etils.epath) and google-cloud-storage (under tensorboardX).
      "TENSORSTORE_GCS_HTTP_URL": url,  # tensorstore, under orbax.
      "EPATH_USE_TF": "false",  # TensorFlow's gfile would go to the real GCS, not the emulator.
    }


def _objects(env) -> list:
  from google.cloud import storage

  old = os.environ.get("STORAGE_EMULATOR_HOST")
  os.environ["STORAGE_EMULATOR_HOST"] = env["STORAGE_EMULATOR_HOST"]
  try:
    client = storage.Client(project="test")
    return sorted(blob.name for blob in client.list_blobs(BUCKET))
  finally:
    if old is None:
      del os.environ["STORAGE_EMULATOR_HOST"]
    else:
      os.environ["STORAGE_EMULATOR_HOST"] = old


def _cli(env, *args, timeout=300):
  return subprocess.run(
    [sys.executable, "-m", "dae_jax.main", "--config=configs/daae.py:tiny", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=timeout,
    env={**os.environ, **env},
  )


def test_a_gs_workdir_trains_resumes_samples_and_evaluates(emulator, tmp_path):
  workdir = f"gs://{BUCKET}/run"
  steps = [
    "--config.train.num_steps=40",
    "--config.train.checkpoint_every_steps=10",
    "--config.train.log_every_steps=10",
    "--config.train.figures_every_steps=40",
  ]
  killed = subprocess.Popen(
    [sys.executable, "-m", "dae_jax.main", "--config=configs/daae.py:tiny", f"--workdir={workdir}", *steps],
    cwd=REPO,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
    env={**os.environ, **emulator},
  )
  # Killed as soon as the step-20 save has begun (mid-save or just after it); step 10 is committed by then.
  deadline = time.time() + 240
  while not any(n.startswith("run/checkpoints/20/") for n in _objects(emulator)) and time.time() < deadline:
    time.sleep(0.02)
  killed.send_signal(signal.SIGKILL)
  killed.wait()
  names = _objects(emulator)
  assert any(n.startswith("run/checkpoints/20/") for n in names), names
  assert "run/checkpoints/10/commit_success.txt" in names, names
  assert not any(n.startswith("run/checkpoints/40/") for n in names), "the kill came too late to test a resume"

  resumed = _cli(emulator, f"--workdir={workdir}", *steps)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "Resuming from the checkpoint at step" in resumed.stderr
  names = _objects(emulator)
  for expected in (
    "run/config.json",
    "run/metrics.jsonl",
    "run/figures/fig1_from_noise.png",
    "run/figures/fig3_from_prior_step0000040.png",
  ):
    assert expected in names, names
  assert "run/checkpoints/40/commit_success.txt" in names
  assert any(n.startswith("run/tensorboard/") for n in names)

  for mode, outputs in (
    ("sample", ("run/samples/trajectories.npz", "run/samples/fig2_noise_injection.png")),
    ("eval", ("run/eval/summary.json", "run/eval/summary.md", "run/figures/chain_from_noise.gif")),
  ):
    result = _cli(emulator, f"--workdir={workdir}", f"--mode={mode}")
    assert result.returncode == 0, result.stderr[-3000:]
    names = _objects(emulator)
    assert all(o in names for o in outputs), (mode, names)
  assert not any(n.startswith("run/") and "tmp" in n.rsplit("/", 1)[-1] for n in names), names
  assert not any(tmp_path.iterdir()) and not (REPO / "gs:").exists()  # Nothing went to a local "gs:" folder.

  sampler = subprocess.run(
    [
      sys.executable,
      "-c",
      "import jax; from dae_jax import pretrained, sampling\n"
      f"chain, params = pretrained.load_sampler('{workdir}')\n"
      "x0 = sampling.uniform_noise(jax.random.PRNGKey(0), (2, 32, 32, 1))\n"
      "print(chain(params, jax.random.PRNGKey(1), x0, 3).shape)",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    env={**os.environ, **emulator},
  )
  assert sampler.returncode == 0, sampler.stderr[-3000:]
  assert sampler.stdout.strip().splitlines()[-1] == "(4, 2, 32, 32, 1)"
