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
  result = subprocess.run(["bash", str(REPO / "launch" / "prepare_celeba.sh"), form, "/data/celeba"],
                          capture_output=True, text=True, env={**os.environ, "DRY_RUN": "1"}, check=True)
  prepares = [line for line in result.stdout.splitlines() if "dae_jax.prepare_data" in line]
  assert len(prepares) == 3 and all(f"--config.data.source={source}" in line for line in prepares)
  assert [line.split("--config.data.split=")[1].split()[0] for line in prepares] == ["train", "validation", "test"]


def test_prepare_celeba_rejects_an_unknown_form():
  result = subprocess.run(["bash", str(REPO / "launch" / "prepare_celeba.sh"), "torrent", "/x"], capture_output=True,
                          text=True, env={**os.environ, "DRY_RUN": "1"})
  assert result.returncode == 2 and "unknown form 'torrent'" in result.stderr
