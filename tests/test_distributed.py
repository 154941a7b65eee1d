"""Many devices and many processes: portable checkpoints, sharded chains, and two processes on localhost."""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from dae_jax import chains, experiment, sharding
from dae_jax.data import faces

from conftest import REPO


def _cli(*args, env=None):
  return subprocess.run(
    [sys.executable, "-m", "dae_jax.main", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    env={**os.environ, **(env or {})},
  )


def test_sharded_chains_match_one_device(tiny_config):
  run = experiment.build(tiny_config("dvae"))
  params = experiment.initial_state(run, faces.load(32, 1)[:8]).autoencoder_variables()
  chain = run.config.chain
  args = (
    run.spec.autoencoder,
    params,
    jax.random.PRNGKey(0),
    chains.paper_chains(chain),
    chain.num_samples,
    run.data_shape,
    run.spec.latent_dim,
    chain.batchnorm,
  )
  one = chains.run(*args, mesh=sharding.make_mesh(jax.devices()[:1]))
  four = chains.run(*args, mesh=sharding.make_mesh(jax.devices()[:4]))
  for name in one:
    np.testing.assert_allclose(one[name], four[name], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_checkpoint_resumes_on_another_device_count_and_back(tmp_path):
  base = ["--config=configs/daae.py:tiny", f"--workdir={tmp_path}"]
  for steps, devices in ((2, 4), (4, 1), (6, 4)):
    result = _cli(
      *base,
      f"--config.train.num_steps={steps}",
      f"--config.train.num_devices={devices}",
      "--config.train.figures_every_steps=1000",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert steps == 2 or f"Resuming from the checkpoint at step {steps - 2}" in result.stderr


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_like_one_process_with_the_same_global_batches(tiny_config, tmp_path):
  args = ["--config=configs/dvae.py:tiny", "--config.train.num_steps=4", "--config.train.figures_every_steps=1000"]
  two_devices_each = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  port = _free_port()
  processes = [
    subprocess.Popen(
      [
        sys.executable,
        "-m",
        "dae_jax.main",
        *args,
        f"--workdir={tmp_path / 'two'}",
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
        f"--process_id={i}",
      ],
      cwd=REPO,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
      env={**os.environ, **two_devices_each},
    )
    for i in range(2)
  ]
  outputs = [p.communicate(timeout=300)[0] for p in processes]
  assert [p.returncode for p in processes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
  single = _cli(*args, f"--workdir={tmp_path / 'one'}")  # 4 devices in one process (conftest's XLA_FLAGS).
  assert single.returncode == 0, single.stderr[-3000:]
  config = tiny_config("dvae", train__num_steps=4)
  _, two = experiment.restore(config, str(tmp_path / "two"))
  _, one = experiment.restore(config, str(tmp_path / "one"))
  assert int(two.step) == int(one.step) == 4
  for a, b in zip(jax.tree.leaves(two), jax.tree.leaves(one)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
  assert (tmp_path / "two" / "metrics.jsonl").read_text().count("\n") == 2  # Written by process 0 only.
