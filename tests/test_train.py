"""train_and_evaluate in-process on the tiny config, as flax's train_test.py does (the CLI is test_cli.py's)."""

import json

import numpy as np

from dae_jax import experiment, train


def _steps(workdir) -> list:
  return [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_train_and_evaluate_writes_the_workdir_and_resumes(tiny_config, tmp_path, caplog):
  config = tiny_config("daae")
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 6
  assert json.loads((tmp_path / "config.json").read_text())["model"]["objective"] == "daae"
  assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [2, 4, 6]
  first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
  assert {"loss", "reconstruction", "adversarial", "discriminator", "steps_per_sec", "eta_sec"} <= set(first)
  # The prior match of a fixed held-out batch, logged with the training scalars (issue 11).
  assert 0.0 <= first["prior_match/probe_accuracy"] <= 1.0 and 0.0 <= first["prior_match/discriminator_accuracy"] <= 1
  assert first["prior_match/frechet_distance"] > 0.0
  assert _steps(tmp_path) == [2, 4, 6]
  assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tensorboard").iterdir())
  for name in ("fig1_from_noise", "fig2_noise_injection", "fig3_from_prior"):
    assert (tmp_path / "figures" / f"{name}.png").is_file()
    assert (tmp_path / "figures" / f"{name}_step0000006.png").is_file()

  config.train.num_steps = 8
  with caplog.at_level("INFO"):
    resumed = train.train_and_evaluate(config, str(tmp_path))
  assert "Resuming from the checkpoint at step 6." in caplog.text
  assert int(resumed.step) == 8
  assert _steps(tmp_path) == [2, 4, 6, 8]  # Appended, none repeated.
  assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [4, 6, 8]


def test_the_prior_monitor_logs_what_each_objective_has_and_is_the_same_at_every_call(tiny_config):
  """DAE: no prior, no monitor. DVAE: the distance and the probe, not the discriminator it lacks. The held-out
  batch and its noise are fixed, so one state gives the same numbers at every log step."""
  assert train._prior_monitor(experiment.build(tiny_config("dae"))) is None
  run = experiment.build(tiny_config("dvae"))
  state = experiment.initial_state(run, np.zeros((8, *run.data_shape), np.float32))
  monitor = train._prior_monitor(run)
  first, second = monitor(state), monitor(state)
  assert set(first) == {"prior_match/frechet_distance", "prior_match/probe_accuracy"}
  assert first == second
