"""--mode=chain_study (``chain_study.run``) on a tiny trained run: the grid, the files, and the chosen steps."""

import dataclasses
import json

import numpy as np

from dae_jax import chains, sampling, train
from dae_jax.eval import chain_study, recommend


def test_the_grid_crosses_batchnorm_noise_and_step_and_starts_every_chain_from_noise():
  study = chain_study.study_chains(7, posterior_sample=True)
  assert len(study) == 2 * 4 * 3
  assert study["running/n0.25/eta0.5/eps0.05"] == chains.Chain(
    "noise",
    sampling.ChainSpec(noise_std=0.25, step_size=0.5, step_noise_std=0.05, batchnorm="running", posterior_sample=True),
    7,
  )
  specs = {chain.spec for chain in study.values()}
  assert len(specs) == len(study)  # No grid point twice.
  assert {(s.batchnorm, s.noise_std, s.step_size, s.step_noise_std) for s in specs} == {
    (mode, noise, eta, eps)
    for mode in ("batch", "running")
    for noise in (0.0, 0.1, 0.25, 0.5)
    for eta, eps in ((1.0, 0.0), (0.5, 0.05), (0.25, 0.02))
  }
  assert {c.start for c in study.values()} == {"noise"} and {c.num_steps for c in study.values()} == {7}


def test_chain_study_writes_one_row_per_chain_and_chooses_steps_by_recommend(tiny_config, tmp_path, monkeypatch):
  # A smaller grid than the real one (each grid point compiles its own chain): both BatchNorm modes, one noise
  # level, two steps.
  monkeypatch.setattr(chain_study, "NOISE_STDS", (0.25,))
  monkeypatch.setattr(chain_study, "STEPS", ((1.0, 0.0), (0.5, 0.05)))
  config = tiny_config("dae", train__num_steps=2, chain__long_num_steps=3)
  train.train_and_evaluate(config, str(tmp_path))
  result = chain_study.run(config, str(tmp_path))

  directory = tmp_path / "chain_study"
  table = json.loads((directory / "table.json").read_text())
  assert table == json.loads(json.dumps(result))
  study = chain_study.study_chains(3)
  assert list(table["curves"]) == list(study) and len(table["rows"]) == len(study) == 4
  assert table["specs"] == {name: dataclasses.asdict(chain.spec) for name, chain in study.items()}
  assert table["step"] == 2 and table["num_steps"] == 3
  assert table["reference"] == "8 images of the training images (this source has no held-out split)"

  curves = table["curves"]
  floor = recommend.recall_floor(curves)
  assert floor > 0
  for (name, curve), row in zip(curves.items(), table["rows"]):
    spec = study[name].spec
    assert (row["batchnorm"], row["noise_std"], row["step_size"], row["step_noise_std"]) == (
      spec.batchnorm,
      spec.noise_std,
      spec.step_size,
      spec.step_noise_std,
    )
    for measure in ("swd", "precision", "recall", "diversity"):
      assert len(curve[measure]) == 4, (name, measure)  # long_num_steps + 1.
    assert curve["chosen"] == recommend.choose_step({k: v for k, v in curve.items() if k != "chosen"}, floor)
    step = row["chosen_step"]
    assert step == curve["chosen"]["step"] and row["chosen_eligible"] == curve["chosen"]["eligible"]
    assert row["chosen_swd"] == curve["swd"][step] and row["recall"] == curve["recall"][step]
    assert row["precision"] == curve["precision"][step] and row["diversity"] == curve["diversity"][step]
    assert row["best_swd"] == min(curve["swd"]) == curve["swd"][row["best_step"]]
    assert row["final_swd"] == curve["swd"][-1] and row["swd_start"] == curve["swd"][0]
  # Every chain starts from the same noise and is measured at the same patch places: step 0 is one number.
  assert len({row["swd_start"] for row in table["rows"]}) == 1
  assert len({c["recall"][0] for c in curves.values()}) == 1
  # ... and the settings part them after it.
  assert len({tuple(c["swd"][1:]) for c in curves.values()}) == len(curves)
  assert np.all(np.isfinite([c["swd"] for c in curves.values()]))

  markdown = (directory / "table.md").read_text()
  assert markdown.startswith("# Chain study at step 2\n")
  assert "4 chains from U(0, 1) noise, 3 steps each" in markdown
  lines = [line for line in markdown.splitlines() if line.startswith("| ")]
  assert lines[0] == "| " + " | ".join(chain_study.COLUMNS) + " |"
  assert len(lines) == 1 + len(study)
  for line, row in zip(lines[1:], table["rows"]):
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[0] == row["batchnorm"] and cells[1] == f"{row['noise_std']:g}"
    assert cells[7].split()[0] == str(row["chosen_step"]) and cells[10] == f"{row['recall']:.3f}"
  png = (directory / "curves.png").read_bytes()
  assert png.startswith(b"\x89PNG") and len(png) > 5000
