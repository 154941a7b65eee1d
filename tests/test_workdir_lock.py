"""One run per workdir: a live holder is named and refused, a dead one is taken over."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from dae_jax import workdir_lock
from dae_jax.errors import InputError

from conftest import REPO


def _dead_pid() -> int:
  process = subprocess.Popen([sys.executable, "-c", "pass"])
  process.wait()
  return process.pid


def _write_lock(workdir, **holder):
  workdir.mkdir(exist_ok=True)
  (workdir / "run.lock").write_text(json.dumps({"started": "then", "slurm_job_id": "", **holder}))


def test_a_live_holder_is_refused_in_one_line_naming_it(tmp_path):
  with workdir_lock.WorkdirLock(tmp_path):
    with pytest.raises(InputError, match=rf"is in use by pid {os.getpid()} on {socket.gethostname()} since") as e:
      workdir_lock.WorkdirLock(tmp_path).__enter__()
    assert "\n" not in str(e.value) and "run.lock" in str(e.value)
  assert not (tmp_path / "run.lock").exists()  # Released.


def test_a_dead_holder_on_this_host_is_taken_over(tmp_path, caplog):
  dead = _dead_pid()
  _write_lock(tmp_path, host=socket.gethostname(), pid=dead)
  with caplog.at_level("WARNING"), workdir_lock.WorkdirLock(tmp_path):
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
  assert f"Taking over the lock of pid {dead}" in caplog.text


def test_a_holder_on_another_host_is_refused_unless_it_is_this_slurm_job(tmp_path, monkeypatch):
  _write_lock(tmp_path, host="elsewhere", pid=1, slurm_job_id="77")
  with pytest.raises(InputError, match="in use by pid 1 on elsewhere"):
    workdir_lock.WorkdirLock(tmp_path).__enter__()
  monkeypatch.setenv("SLURM_JOB_ID", "77")  # The same job, requeued onto another node.
  with workdir_lock.WorkdirLock(tmp_path):
    assert json.loads((tmp_path / "run.lock").read_text())["slurm_job_id"] == "77"


@pytest.mark.slow
def test_a_second_run_on_a_live_workdir_exits_2_naming_the_first(tmp_path):
  args = [
    sys.executable,
    "-m",
    "dae_jax.main",
    "--config=configs/dae.py:tiny",
    f"--workdir={tmp_path}",
    "--config.train.num_steps=100000",
    "--config.train.log_every_steps=5",
  ]
  first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 120
    while not (tmp_path / "metrics.jsonl").is_file() and time.time() < deadline:
      time.sleep(0.1)
    second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2, second.stderr[-2000:]
    assert second.stderr.strip().count("\n") == 0 and f"in use by pid {first.pid}" in second.stderr
  finally:
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=120)
  assert first.returncode == 0 and not (tmp_path / "run.lock").exists()
