"""``--config.KEY=VALUE`` without ``--config``: applied to the config the workdir recorded (sample, eval,
chain_study), each value read as the recorded value's type."""

import json
import os
import subprocess
import sys

import ml_collections
import pytest

from dae_jax import cli
from dae_jax.errors import InputError

from conftest import REPO


def _recorded(tiny_config):
  """The tiny DAE config as a workdir's config.json reads it back: lists, not tuples."""
  return ml_collections.ConfigDict(json.loads(tiny_config("dae").to_json()))


def test_each_value_is_read_as_the_recorded_type(tiny_config):
  config = cli.with_overrides(
    _recorded(tiny_config),
    [
      "--config.chain.num_steps=-1",
      "--config.noise.sigma=1",
      "--config.model.widths=(4, 8)",
      "--config.chain.batchnorm=running",
      "--config.chain.posterior_sample=true",
    ],
  )
  assert config.chain.num_steps == -1 and isinstance(config.chain.num_steps, int)
  assert config.noise.sigma == 1.0 and isinstance(config.noise.sigma, float)
  assert list(config.model.widths) == [4, 8]
  assert config.chain.batchnorm == "running" and config.chain.posterior_sample is True


def test_a_bool_takes_true_or_false(tiny_config):
  recorded = _recorded(tiny_config)
  recorded.model.code_batchnorm = False
  assert cli.with_overrides(recorded, ["--config.model.code_batchnorm=True"]).model.code_batchnorm is True
  with pytest.raises(InputError, match=r"^--config.model.code_batchnorm=yes: expected true or false$"):
    cli.with_overrides(recorded, ["--config.model.code_batchnorm=yes"])


@pytest.mark.parametrize(
  "override,message",
  [
    ("--config.chain.num_stpes=3", "--config.chain.num_stpes: unknown config key 'chain.num_stpes'"),
    ("--config.seed.x=3", "--config.seed.x: unknown config key 'seed.x'"),
    ("--config.chain.num_steps", "--config.chain.num_steps: give a value, as in --config.chain.num_steps=VALUE"),
    ("--config.chain.num_steps=many", "--config.chain.num_steps=many: expected int like 4, got 'many'"),
    ("--config.noise.sigma=(1, 2)", "--config.noise.sigma=(1, 2): expected float like"),
  ],
)
def test_a_bad_override_is_one_line_naming_it(tiny_config, override, message):
  with pytest.raises(InputError) as error:
    cli.with_overrides(_recorded(tiny_config), [override])
  assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.slow
def test_sample_without_config_applies_the_override_to_the_workdir_config(tiny_config, tmp_path):
  """chain.num_steps=-1 reaches --mode=sample: it asks for the eval summary (the workdir has none), where the
  recorded num_steps would have gone on to look for a checkpoint."""
  (tmp_path / "config.json").write_text(tiny_config("dae").to_json())
  result = subprocess.run(
    [sys.executable, "-m", "dae_jax.main", f"--workdir={tmp_path}", "--mode=sample", "--config.chain.num_steps=-1"],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    env=dict(os.environ),
  )
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
    f"error: chain.num_steps=-1 reads {tmp_path / 'eval' / 'summary.json'}, which does not exist; run --mode=eval "
    "on this workdir first"
  )
  assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
