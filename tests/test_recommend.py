"""eval.recommend on hand-made curves whose answer is obvious, its reader's errors, and chain.num_steps=-1 in
--mode=sample and pretrained.load_sampler."""

import json
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from dae_jax import chains, pretrained, rng, sampling, train
from dae_jax.errors import InputError
from dae_jax.eval import recommend

from conftest import REPO


def _curve(swd, recall=None):
  curve = {"swd": list(swd)}
  if recall is not None:
    curve["recall"] = list(recall)
    curve["precision"] = [0.9 - 0.1 * i for i in range(len(swd))]
  return curve


def test_the_lowest_swd_wins_when_every_step_keeps_its_recall():
  choice = recommend.choose_step(_curve([50, 30, 10, 20, 40], [0.8, 0.8, 0.7, 0.9, 0.8]), floor=0.4)
  assert choice == {"step": 2, "swd": 10.0, "eligible": True, "precision": pytest.approx(0.7), "recall": 0.7}


def test_the_recall_floor_is_half_the_best_recall_of_any_chain():
  curves = {"a": _curve([1, 2], [0.2, 0.6]), "b": _curve([1, 2], [0.9, 0.1]), "c": _curve([1, 2])}
  assert recommend.recall_floor(curves) == pytest.approx(0.45)
  assert recommend.recall_floor({"a": _curve([1, 2]), "b": _curve([3])}) == 0.0


def test_a_lower_swd_below_the_recall_floor_is_skipped():
  # The floor is 0.5 x 0.9 (chain "b"): step 1 of "a" has the lowest SWD but recall 0.3 < 0.45.
  curves = {"a": _curve([50, 5, 20, 30], [0.6, 0.3, 0.5, 0.6]), "b": _curve([60, 40], [0.9, 0.9])}
  choices = recommend.choose_steps(curves)
  assert choices["a"]["step"] == 2 and choices["a"]["swd"] == 20.0 and choices["a"]["eligible"]
  assert choices["b"]["step"] == 1 and choices["b"]["eligible"]
  # Recall exactly at the floor is allowed.
  assert recommend.choose_step(_curve([9, 1], [1.0, 0.45]), floor=0.45)["step"] == 1


def test_a_chain_with_no_step_at_the_floor_keeps_its_lowest_swd_marked_not_eligible_and_cannot_win():
  curves = {"collapsed": _curve([30, 2, 1, 3], [0.4, 0.1, 0.2, 0.3]), "diverse": _curve([30, 25, 28], [0.9, 1.0, 0.95])}
  choices = recommend.choose_steps(curves)
  assert choices["collapsed"] == {
    "step": 2,
    "swd": 1.0,
    "eligible": False,
    "precision": pytest.approx(0.7),
    "recall": 0.2,
  }
  assert choices["diverse"]["step"] == 1 and choices["diverse"]["eligible"]
  evaluated = {
    "collapsed": chains.Chain("prior", sampling.ChainSpec(), 3),
    "diverse": chains.Chain("noise", sampling.ChainSpec(noise_std=0.25, batchnorm="running"), 2),
  }
  best = recommend.recommended(choices, evaluated)
  assert best["chain"] == "diverse" and best["start"] == "noise" and best["num_steps"] == 1 and best["swd"] == 25.0
  assert best["spec"] == {
    "noise_std": 0.25,
    "step_size": 1.0,
    "step_noise_std": 0.0,
    "batchnorm": "running",
    "posterior_sample": False,
  }
  # With no eligible chain at all (not possible through choose_steps), the lowest SWD wins.
  none_eligible = {name: dict(c, eligible=False) for name, c in choices.items()}
  assert recommend.recommended(none_eligible, evaluated)["chain"] == "collapsed"


def test_without_recall_the_score_is_swd_alone():
  choices = recommend.choose_steps({"a": _curve([5, 4, 3, 6]), "b": _curve([2.5, 7])})
  assert choices == {"a": {"step": 2, "swd": 3.0, "eligible": True}, "b": {"step": 0, "swd": 2.5, "eligible": True}}
  evaluated = {"a": chains.Chain("noise", sampling.ChainSpec(), 3), "b": chains.Chain("prior", sampling.ChainSpec(), 1)}
  best = recommend.recommended(choices, evaluated)
  assert (best["chain"], best["start"], best["num_steps"]) == ("b", "prior", 0)


def test_ties_go_to_the_first_step_and_the_first_chain():
  assert recommend.choose_step(_curve([4, 2, 2, 3], [1, 1, 1, 1]), floor=0.5)["step"] == 1
  assert recommend.choose_step(_curve([4, 2, 2, 3]), floor=0.0)["step"] == 1
  choices = recommend.choose_steps({"second": _curve([3, 1]), "first": _curve([1, 5])})
  evaluated = {name: chains.Chain("noise", sampling.ChainSpec(), 1) for name in choices}
  assert recommend.recommended(choices, evaluated)["chain"] == "second"  # Insertion order, not the name.


def _write_summary(workdir, entry, key="recommended"):
  path = workdir / "eval" / "summary.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({"step": 6, key: entry}))
  return path


GOOD = {
  "chain": "nguyen",
  "start": "noise",
  "spec": {
    "noise_std": 0.3,
    "step_size": 0.5,
    "step_noise_std": 0.05,
    "batchnorm": "running",
    "posterior_sample": False,
  },
  "num_steps": 3,
  "swd": 12.5,
}


def test_read_returns_the_entry_with_a_chain_spec(tmp_path):
  _write_summary(tmp_path, GOOD)
  entry = recommend.read(str(tmp_path))
  assert entry["spec"] == sampling.ChainSpec(noise_std=0.3, step_size=0.5, step_noise_std=0.05, batchnorm="running")
  assert (entry["chain"], entry["start"], entry["num_steps"], entry["swd"]) == ("nguyen", "noise", 3, 12.5)
  best = pretrained.recommended_chain(str(tmp_path))
  assert best == chains.Chain("noise", entry["spec"], 3)


@pytest.mark.parametrize(
  "change,message",
  [
    ({"num_steps": -1}, "recommends num_steps=-1; expected an int >= 0"),
    ({"num_steps": 2.5}, "recommends num_steps=2.5; expected an int >= 0"),
    ({"num_steps": True}, "recommends num_steps=True; expected an int >= 0"),
    ({"num_steps": "3"}, "recommends num_steps='3'; expected an int >= 0"),
    ({"num_steps": None}, "recommends num_steps=None; expected an int >= 0"),
    ({"spec": {"noise": 0.3}}, "holds a recommended spec that ChainSpec does not take"),
    ({"spec": None}, "holds a recommended spec that ChainSpec does not take"),
    ({"spec": dict(GOOD["spec"], batchnorm="bogus")}, "ChainSpec batchnorm='bogus' is not allowed"),
    ({"spec": dict(GOOD["spec"], noise_std=-0.5)}, "ChainSpec noise_std=-0.5 is not allowed"),
    ({"start": "middle"}, "recommends start='middle'; expected one of noise, prior"),
    ({"start": None}, "recommends start=None; expected one of noise, prior"),
  ],
)
def test_read_rejects_a_bad_entry_in_one_line_naming_the_value(tmp_path, change, message):
  _write_summary(tmp_path, {**GOOD, **change})
  with pytest.raises(InputError, match=re.escape(message)) as error:
    recommend.read(str(tmp_path))
  assert "\n" not in str(error.value)


def test_read_rejects_a_missing_spec_and_a_missing_summary_or_entry(tmp_path):
  with pytest.raises(InputError, match=r"summary\.json, which does not exist; run --mode=eval") as error:
    recommend.read(str(tmp_path))
  assert str(tmp_path / "eval" / "summary.json") in str(error.value) and "\n" not in str(error.value)
  path = _write_summary(tmp_path, GOOD, key="chains")
  with pytest.raises(InputError, match="has no 'recommended' chain") as error:
    recommend.read(str(tmp_path))
  assert str(path) in str(error.value) and "\n" not in str(error.value)
  _write_summary(tmp_path, {k: v for k, v in GOOD.items() if k != "spec"})
  with pytest.raises(InputError, match="spec that ChainSpec does not take") as error:
    recommend.read(str(tmp_path))
  assert "\n" not in str(error.value)


@pytest.mark.slow
def test_sample_with_no_eval_summary_exits_2_in_one_line(tmp_path):
  workdir = tmp_path / "run"
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "dae_jax.main",
      "--config=configs/dae.py:tiny",
      f"--workdir={workdir}",
      "--mode=sample",
      "--config.chain.num_steps=-1",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    env=dict(os.environ),
  )
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last == (
    f"error: chain.num_steps=-1 reads {workdir / 'eval' / 'summary.json'}, which does not exist; run --mode=eval on "
    "this workdir first"
  )
  assert not workdir.exists()


def test_sample_and_load_sampler_follow_the_recommended_chain(tiny_config, tmp_path):
  """A hand-written recommendation (a spec far from the config's chain, 3 steps where the config says 4):
  --mode=sample (``pretrained.write_samples``) writes it as "recommended" at its length, and Figs. 1 and 3 at that
  length too; load_sampler gives the same spec and default length."""
  workdir = str(tmp_path)
  config = tiny_config("dae", train__num_steps=2)
  train.train_and_evaluate(config, workdir)
  config.chain.num_steps = -1
  with pytest.raises(InputError, match=r"summary\.json, which does not exist"):
    pretrained.load_sampler(workdir, config=config)
  with pytest.raises(InputError, match=r"summary\.json, which does not exist"):
    pretrained.write_samples(config, workdir)
  assert not (tmp_path / "samples").exists()

  _write_summary(tmp_path, GOOD)
  pretrained.write_samples(config, workdir)
  trajectories = np.load(tmp_path / "samples" / "trajectories.npz")
  assert set(trajectories.files) == {"fig1_from_noise", "fig2_noise_injection", "fig3_from_prior", "recommended"}
  assert trajectories["recommended"].shape == (4, 4, 32, 32, 1)  # num_steps + 1 steps of 4 samples.
  assert trajectories["fig1_from_noise"].shape[0] == trajectories["fig3_from_prior"].shape[0] == 4
  assert trajectories["fig2_noise_injection"].shape[0] == config.chain.long_num_steps + 1
  assert (tmp_path / "samples" / "recommended.png").stat().st_size > 500

  # The same chain by hand: --mode=sample's key at the checkpoint's step, its "noise" start, the recommended spec.
  sample_chain, params = pretrained.load_sampler(workdir, config=config)
  key = jax.random.fold_in(rng.run_key(config.seed, "figures"), 2)
  x0 = sampling.uniform_noise(rng.named(key, "start/noise"), (4, 32, 32, 1))
  np.testing.assert_array_equal(trajectories["recommended"][0], x0)
  chain_key = rng.named(key, "chain/recommended")
  by_hand = jax.jit(sample_chain)(params, chain_key, x0)  # The recommended length by default.
  assert by_hand.shape == (4, 4, 32, 32, 1)
  np.testing.assert_allclose(trajectories["recommended"], by_hand, rtol=1e-5, atol=1e-5)
  # The spec matters: Fig. 1's chain (the config's: no noise, full steps, batch statistics, so its key plays no
  # part) starts from the same noise and ends elsewhere.
  fig1 = trajectories["fig1_from_noise"]
  np.testing.assert_array_equal(fig1[0], x0)
  assert np.abs(fig1[1:] - by_hand[1:]).max() > 1e-2
