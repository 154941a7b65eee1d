import os
import subprocess

import pytest

from conftest import REPO

SCRIPTS = sorted(p for p in (REPO / "launch").iterdir() if p.suffix == ".sh")


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


def test_local_launch_runs_the_cli_with_the_overrides():
  assert _dry(REPO / "launch" / "local.sh", "configs/dvae.py", "w", "--config.train.num_steps=5") == (
    "python -m dae_jax.main --config=configs/dvae.py --workdir=w --config.train.num_steps=5"
  )


def test_slurm_launch_runs_one_srun_of_the_cli():
  out = _dry(REPO / "launch" / "slurm.sbatch", CONFIG="configs/daae.py", WORKDIR="/shared/w")
  assert out == "srun python -m dae_jax.main --config=configs/daae.py --workdir=/shared/w"


def test_tpu_vm_launch_runs_the_same_command_on_every_worker():
  out = _dry(REPO / "launch" / "tpu_vm.sh", "run", "configs/dvae.py", "/mnt/w", "--config.train.num_steps=5")
  assert out.startswith("gcloud compute tpus tpu-vm ssh dae-jax") and "--worker=all" in out
  assert out.endswith("python -m dae_jax.main --config=configs/dvae.py --workdir=/mnt/w --config.train.num_steps=5")
  assert "pip install -e ." in _dry(REPO / "launch" / "tpu_vm.sh", "setup", REPO="https://example.invalid/dae_jax")
