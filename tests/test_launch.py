import os
import pathlib
import re
import shlex
import signal
import subprocess
import time

import pytest

from conftest import REPO

SCRIPTS = sorted(p for p in (REPO / "launch").iterdir() if p.suffix in (".sh", ".sbatch"))
TUPLE = "--config.model.widths=(32,64)"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_launch_scripts_parse(script):
  subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("form,source", [("zip", "celeba_files"), ("folder", "celeba_files"), ("tfds", "celeba")])
def test_prepare_celeba_dry_run_prints_one_prepare_per_split(form, source):
  result = subprocess.run(
    ["bash", str(REPO / "launch" / "prepare_celeba.sh"), form, "/data/celeba"],
    capture_output=True,
    text=True,
    env={**os.environ, "DRY_RUN": "1"},
    check=True,
  )
  prepares = [line for line in result.stdout.splitlines() if "dae_jax.prepare_data" in line]
  assert len(prepares) == 3 and all(f"--config.data.source={source}" in line for line in prepares)
  assert [line.split("--config.data.split=")[1].split()[0] for line in prepares] == ["train", "validation", "test"]


def test_prepare_celeba_rejects_an_unknown_form():
  result = subprocess.run(
    ["bash", str(REPO / "launch" / "prepare_celeba.sh"), "torrent", "/x"],
    capture_output=True,
    text=True,
    env={**os.environ, "DRY_RUN": "1"},
  )
  assert result.returncode == 2 and "unknown form 'torrent'" in result.stderr


def _dry(*args, **env):
  return subprocess.run(
    ["bash", *map(str, args)], capture_output=True, text=True, check=True, env={**os.environ, "DRY_RUN": "1", **env}
  ).stdout.strip()


def test_local_launch_runs_the_cli_with_python3_and_the_overrides():
  out = _dry(REPO / "launch" / "local.sh", "configs/dvae.py", "w", "--config.train.num_steps=5", TUPLE)
  assert shlex.split(out) == [
    "python3",
    "-m",
    "dae_jax.main",
    "--config=configs/dvae.py",
    "--workdir=w",
    "--config.train.num_steps=5",
    TUPLE,
  ]
  assert _dry(REPO / "launch" / "local.sh", "c.py", "w", PYTHON="/opt/py/bin/python").startswith("/opt/py/bin/python ")


def test_slurm_launch_prepares_the_data_once_then_trains_in_one_step():
  env = {"CONFIG": "configs/daae.py", "WORKDIR": "/shared/w", "CACHE_DIR": "/shared/cache", "SLURM_CPUS_PER_TASK": "6"}
  prepare, train = map(shlex.split, _dry(REPO / "launch" / "slurm.sbatch", TUPLE, **env).splitlines()[:2])
  config = ["--config=configs/daae.py", "--config.data.cache_dir=/shared/cache", TUPLE]
  assert prepare == ["srun", "-n1", "-N1", "python3", "-m", "dae_jax.prepare_data", *config]
  assert train == [
    "srun",
    "--kill-on-bad-exit=1",
    "--cpus-per-task=6",
    "python3",
    "-m",
    "dae_jax.main",
    *config,
    "--workdir=/shared/w",
  ]


def test_slurm_script_binds_gpus_per_node_and_requeues():
  directives = dict(
    line.removeprefix("#SBATCH --").partition("=")[::2]
    for line in (REPO / "launch" / "slurm.sbatch").read_text().splitlines()
    if line.startswith("#SBATCH")
  )
  # One task per GPU, each seeing all of its node's GPUs: what JAX's local_device_ids=[SLURM_LOCALID] expects.
  assert "gpus-per-task" not in directives
  assert directives["gpus-per-node"] == directives["ntasks-per-node"]
  assert "requeue" in directives
  # USR1 to the batch shell ahead of the limit: it stops the step at a checkpoint, then requeues the job.
  assert directives["signal"].startswith("B:USR1@")
  dry = _dry(REPO / "launch" / "slurm.sbatch", CONFIG="configs/dvae.py", WORKDIR="/shared/w").splitlines()
  assert dry[-1] == "on USR1: kill -USR1 <srun>; wait; scontrol requeue $SLURM_JOB_ID"


def _executable(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("#!/usr/bin/env bash\n" + text)
  path.chmod(0o755)
  return path


def _fake_python(path, version):
  """An interpreter that reports ``version`` and, run as dae_jax, writes its arguments one per line."""
  return _executable(path, f'if [[ $1 == -c ]]; then echo {version}; else printf "%s\\n" "$@" >"$HOME/args"; fi\n')


@pytest.fixture
def worker(tmp_path):
  """A stand-in TPU worker: HOME is tmp_path/home, and `gcloud ... ssh --command=C` runs C there with bash."""
  home = tmp_path / "home"
  (home / "dae_jax").mkdir(parents=True)
  _executable(
    tmp_path / "bin" / "gcloud",
    'for arg; do [[ $arg == --command=* ]] && exec bash -c "${arg#--command=}"; done; exit 3\n',
  )
  return {**os.environ, "HOME": str(home), "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}


def _wait_for(path, timeout=60.0):  # Only a failure waits this long; a loaded CI machine is slow.
  deadline = time.monotonic() + timeout
  while not (path.exists() and path.read_text()):
    assert time.monotonic() < deadline, f"{path} never appeared"
    time.sleep(0.05)
  return path.read_text()


def test_tpu_vm_run_delivers_a_tuple_override_intact_to_a_detached_worker(worker):
  home = pathlib.Path(worker["HOME"])
  _fake_python(home / "dae_jax_venv" / "bin" / "python3", "3.11")
  overrides = [TUPLE, "--config.data.path=~/d/img align.zip", "--config.x=$HOME;true"]
  printed = _dry(REPO / "launch" / "tpu_vm.sh", "run", "configs/dvae.py", "/mnt/w", *overrides)
  assert printed.startswith("gcloud compute tpus tpu-vm ssh dae-jax --zone=us-central2-b --worker=all ")
  # The printed command, pasted into a shell, reaches the worker, which starts dae_jax in the background.
  started = subprocess.run(["bash", "-c", printed], capture_output=True, text=True, env=worker, check=True)
  assert re.fullmatch(r".+: started pid \d+, log .+/dae_jax_logs/.+\.log\n", started.stdout)
  args = _wait_for(home / "args").splitlines()
  assert args == ["-m", "dae_jax.main", "--config=configs/dvae.py", "--workdir=/mnt/w", *overrides]
  assert (home / "dae_jax_logs" / "run.pid").read_text().strip().isdigit()


def test_tpu_vm_run_refuses_an_old_worker_interpreter(worker):
  home = pathlib.Path(worker["HOME"])
  _fake_python(home / "dae_jax_venv" / "bin" / "python3", "3.10")
  printed = _dry(REPO / "launch" / "tpu_vm.sh", "run", "configs/dvae.py", "/mnt/w")
  result = subprocess.run(["bash", "-c", printed], capture_output=True, text=True, env=worker)
  assert result.returncode == 2
  assert "is Python 3.10; dae_jax needs Python 3.11 or newer" in result.stderr
  assert not (home / "dae_jax_logs").exists()


@pytest.mark.parametrize("version,code", [("3.10", 2), ("3.9", 2), ("2.7", 2), ("3.11", 0), ("3.13", 0), ("4.0", 0)])
def test_tpu_vm_python_check(tmp_path, version, code):
  python = _fake_python(tmp_path / "python", version)
  result = subprocess.run(
    ["bash", str(REPO / "launch" / "tpu_vm.sh"), "check-python"],
    capture_output=True,
    text=True,
    env={**os.environ, "PYTHON": str(python)},
  )
  assert result.returncode == code
  if code:
    assert result.stderr == (
      f"error: '{python}' is Python {version}; dae_jax needs Python 3.11 or newer (jax 0.10, flax 0.12)\n"
    )


def _git(*args, cwd):
  subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True)


def test_tpu_vm_setup_twice_updates_the_clone_and_keeps_the_interpreter(worker, tmp_path):
  origin = tmp_path / "origin"
  origin.mkdir()
  _git("init", "-q", "-b", "main", cwd=origin)
  (origin / "version.txt").write_text("1")
  _git("add", ".", cwd=origin)
  _git("commit", "-qm", "one", cwd=origin)
  home = pathlib.Path(worker["HOME"])
  (home / "dae_jax").rmdir()  # A fresh worker.
  bin_dir = tmp_path / "bin"
  _executable(bin_dir / "python3", 'echo "$*" >>"$HOME/python3.calls"\n')
  _executable(
    bin_dir / "uv",
    'echo "$*" >>"$HOME/uv.calls"\n'
    'if [[ $1 == venv ]]; then mkdir -p "${@: -1}/bin"; cp "$HOME/../venv_python" "${@: -1}/bin/python3"; fi\n',
  )
  _fake_python(tmp_path / "venv_python", "3.11")
  env = {**worker, "REPO": str(origin)}
  setup = ["bash", str(REPO / "launch" / "tpu_vm.sh"), "setup"]
  subprocess.run(setup, env=env, check=True, capture_output=True)
  (origin / "version.txt").write_text("2")
  _git("commit", "-qam", "two", cwd=origin)
  subprocess.run(setup, env=env, check=True, capture_output=True)
  assert (home / "dae_jax" / "version.txt").read_text() == "2"
  uv_calls = (home / "uv.calls").read_text().splitlines()
  assert [call.split()[0] for call in uv_calls] == ["venv", "pip", "pip"]
  assert "--python 3.11" in uv_calls[0]
  assert uv_calls[1].endswith(f"-e {home}/dae_jax jax[tpu]")
  assert (home / "python3.calls").read_text().splitlines() == ["-m pip install --user --quiet --upgrade uv"] * 2


def test_tpu_vm_logs_follows_one_worker():
  out = shlex.split(_dry(REPO / "launch" / "tpu_vm.sh", "logs", "3"))
  assert "--worker=3" in out and out[-1] == '--command=tail -n 200 -F "$HOME"/dae_jax_logs/*.log'


def test_slurm_script_on_usr1_stops_the_training_step_then_requeues_the_job(tmp_path):
  """What SLURM does ahead of the time limit (--signal=B:USR1@...), with stand-ins for srun and scontrol."""
  bin_dir = tmp_path / "bin"
  _executable(
    bin_dir / "srun",
    'if [[ "$1" == "-n1" ]]; then exit 0; fi  # The data step.\n'
    'trap \'echo "$@" > "$STOPPED"; exit 0\' USR1\n'
    'touch "$STARTED"\n'
    "while true; do sleep 0.05; done\n",
  )
  _executable(bin_dir / "scontrol", 'echo "$@" > "$REQUEUED"\n')
  env = {
    **os.environ,
    "PATH": f"{bin_dir}:{os.environ['PATH']}",
    "SLURM_JOB_ID": "42",
    "CONFIG": "configs/dvae.py",
    "WORKDIR": "/shared/w",
    "STARTED": str(tmp_path / "started"),
    "STOPPED": str(tmp_path / "stopped"),
    "REQUEUED": str(tmp_path / "requeued"),
  }
  script = subprocess.Popen(["bash", str(REPO / "launch" / "slurm.sbatch")], env=env, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 20
  while not (tmp_path / "started").exists() and time.time() < deadline:
    time.sleep(0.05)
  script.send_signal(signal.SIGUSR1)
  _, stderr = script.communicate(timeout=30)
  assert script.returncode == 0, stderr
  assert "--kill-on-bad-exit=1" in (tmp_path / "stopped").read_text()  # The training step got the signal...
  assert (tmp_path / "requeued").read_text().split() == ["requeue", "42"]  # ...then the job was requeued.
