"""SIGTERM, SIGINT and SIGUSR1 through the CLI: the run saves where it was stopped, exits 0, and the resumed
run ends equal, leaf by leaf, to one that was never stopped."""

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
ARGS = [
  "--config=configs/dvae.py:tiny",
  "--config.train.log_every_steps=5",
  "--config.train.checkpoint_every_steps=1000",
  "--config.train.figures_every_steps=100000",
]
TOTAL = 200


def _cli(*args):
  return subprocess.run(
    [sys.executable, "-m", "dae_jax.main", *ARGS, *args], cwd=REPO, capture_output=True, text=True, timeout=300
  )


def _leaves(tiny_config, workdir):
  _, state = experiment.restore(tiny_config("dvae", train__num_steps=TOTAL), str(workdir))
  return [np.asarray(x) for x in jax.tree.leaves(state)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("whole")
  result = _cli(f"--workdir={workdir}", f"--config.train.num_steps={TOTAL}")
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1], ids=lambda s: s.name)
def test_a_signal_saves_where_the_run_was_and_the_resume_is_identical(signum, uninterrupted, tiny_config, tmp_path):
  workdir = tmp_path / "stopped"
  # Far more steps than it can run before the signal: the stop, not the end, must make the checkpoint.
  process = subprocess.Popen(
    [sys.executable, "-m", "dae_jax.main", *ARGS, f"--workdir={workdir}", "--config.train.num_steps=100000"],
    cwd=REPO,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )
  deadline = time.time() + 120
  metrics = workdir / "metrics.jsonl"
  while not (metrics.is_file() and metrics.read_text()) and time.time() < deadline:  # Training has begun.
    time.sleep(0.05)
  sent = time.time()
  os.kill(process.pid, signum)
  stderr = process.communicate(timeout=60)[1]
  assert process.returncode == 0 and time.time() - sent < 30, stderr[-3000:]
  saved = [int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]
  assert len(saved) == 1 and 5 <= saved[0] < TOTAL, (saved, stderr[-2000:])
  assert f"Stopped at step {saved[0]} on {signum.name}" in stderr
  assert "Traceback" not in stderr

  resumed = _cli(f"--workdir={workdir}", f"--config.train.num_steps={TOTAL}")
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"Resuming from the checkpoint at step {saved[0]}." in resumed.stderr
  for a, b in zip(_leaves(tiny_config, uninterrupted), _leaves(tiny_config, workdir), strict=True):
    np.testing.assert_array_equal(a, b)
