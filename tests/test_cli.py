"""The command line end to end, in subprocesses, on the tiny config (4 fake devices, inherited from conftest)."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from dae_jax import experiment

from conftest import REPO

pytestmark = pytest.mark.slow


def _cli(*args, timeout=300, env=None):
  return subprocess.run(
    [sys.executable, "-m", "dae_jax.main", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=timeout,
    env={**os.environ, **(env or {})},
  )


def _start(*args):
  return subprocess.Popen(
    [sys.executable, "-m", "dae_jax.main", *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )


def _params(config, workdir):
  _, state = experiment.restore(config, str(workdir))
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_train_then_sample(tmp_path):
  """The command line around train_and_evaluate (tested in-process in test_train.py) and --mode=sample."""
  workdir = tmp_path / "run"
  first = _cli("--config=configs/daae.py:tiny", f"--workdir={workdir}")
  assert first.returncode == 0, first.stderr[-3000:]
  assert "Starting from scratch" in first.stderr and "step 6/6" in first.stderr
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["2", "4", "6"]

  sample = _cli(f"--workdir={workdir}", "--mode=sample")  # The workdir's own config.json.
  assert sample.returncode == 0, sample.stderr[-3000:]
  trajectories = np.load(workdir / "samples" / "trajectories.npz")
  assert trajectories["fig1_from_noise"].shape == (5, 4, 32, 32, 1)
  assert trajectories["fig2_noise_injection"].shape == (9, 4, 32, 32, 1)
  assert (workdir / "samples" / "fig3_from_prior.png").is_file()


def test_a_run_killed_and_restarted_ends_bit_identical_to_an_uninterrupted_one(tiny_config, tmp_path):
  args = [
    "--config=configs/dvae.py:tiny",
    "--config.train.num_steps=150",
    "--config.train.checkpoint_every_steps=10",
    "--config.train.figures_every_steps=1000",
  ]
  whole = _cli(*args, f"--workdir={tmp_path / 'whole'}")
  assert whole.returncode == 0, whole.stderr[-3000:]

  killed_dir = tmp_path / "killed"
  process = _start(*args, f"--workdir={killed_dir}")
  deadline = time.time() + 120
  while not (killed_dir / "checkpoints" / "20").is_dir() and time.time() < deadline:
    time.sleep(0.01)
  process.send_signal(signal.SIGKILL)
  process.wait()
  saved = {int(p.name) for p in (killed_dir / "checkpoints").iterdir() if p.name.isdigit()}
  assert 20 <= max(saved) < 150, f"the kill came too late to test anything: {sorted(saved)}"

  resumed = _cli(*args, f"--workdir={killed_dir}")
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "Resuming from the checkpoint at step" in resumed.stderr
  logged = [json.loads(line)["step"] for line in (killed_dir / "metrics.jsonl").read_text().splitlines()]
  assert logged == sorted(set(logged)) and logged[-1] == 150  # One line per logged step, none twice.
  config = tiny_config("dvae", train__num_steps=150)
  for a, b in zip(_params(config, tmp_path / "whole"), _params(config, killed_dir)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
  "args,message",
  [
    (["--config=configs/dae.py:tiny", "--config.model.objective=gan"], "model.objective='gan' is not allowed"),
    (["--config=configs/dae.py:tiny", "--config.loss.reconstruction=l1"], "loss.reconstruction='l1' is not allowed"),
    (["--config=configs/dae.py:tiny", "--config.noise.sigma=0"], "noise.sigma=0"),
    (["--config=configs/dae.py:tiny", "--config.data.image_size=48"], "data.image_size=48 is not allowed"),
    (["--config=configs/dae.py:tiny", "--config.train.batch_size=6"], "train.batch_size=6 is not divisible by the 4"),
    (["--config=configs/dae.py:tiny", "--config.noise.sigam=0.25"], "sigam"),
    (["--config=configs/dae.py:huge"], "config variant 'huge' is not allowed"),
    (["--config=configs/nope.py"], "nope.py"),
    (["--config=configs/daae.py", "--mode=sample"], "holds no checkpoint"),
    (["--mode=train"], "--config is required for --mode=train"),
    (["--mode=sample"], "holds no config.json; give --config"),
  ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, args, message):
  result = _cli(*args, f"--workdir={tmp_path / 'w'}", timeout=120, env={"TFDS_DATA_DIR": str(tmp_path)})
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and message in last, result.stderr[-3000:]
  assert not (tmp_path / "w").exists()  # A run that fails before its first step leaves no workdir behind.


def test_missing_celeba_fails_without_trying_a_download_and_says_how_to_fix_it(tmp_path):
  start = time.perf_counter()
  result = _cli("--config=configs/dvae.py", f"--workdir={tmp_path / 'w'}", env={"TFDS_DATA_DIR": str(tmp_path)})
  elapsed = time.perf_counter() - start
  # TFDS's download retries for about 3.5 minutes; a minute leaves room for a loaded machine's start-up.
  assert result.returncode == 2 and elapsed < 60, (elapsed, result.stderr[-2000:])
  assert result.stderr.strip().count("\n") == 0, result.stderr
  assert "downloads/manual" in result.stderr and "configs/daae.py:demo" in result.stderr
  assert not (tmp_path / "w").exists()  # Nothing half-written.


def test_a_diverged_run_exits_1_in_one_line_and_saves_nothing_non_finite(tmp_path):
  workdir = tmp_path / "w"
  args = [
    "--config=configs/dae.py:tiny",
    "--config.optim.learning_rate=1e39",
    "--config.train.checkpoint_every_steps=1",
  ]
  result = _cli(*args, f"--workdir={workdir}", timeout=120)
  assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and "non-finite" in last and "at step 1" in last, last
  assert not workdir.exists()  # It made the workdir and saved nothing: neither a step nor a temporary is left.
