"""--mode=eval end to end on tiny models: the summary, its numbers' invariants, and the figures."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax.eval import nearest

from conftest import REPO
import fixtures

pytestmark = pytest.mark.slow


def _cli(*args):
  return subprocess.run(
    [sys.executable, "-m", "dae_jax.main", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    env=dict(os.environ),
  )


def test_nearest_distances_against_a_naive_search():
  samples = jax.random.uniform(jax.random.PRNGKey(0), (5, 4, 4, 1))
  training = np.random.default_rng(0).integers(0, 256, (300, 4, 4, 1), dtype=np.uint8)
  naive = [min(np.sqrt(np.mean((np.asarray(s) - t / 255.0) ** 2)) for t in training) for s in samples]
  np.testing.assert_allclose(nearest.nearest_distances(samples, training), naive, rtol=1e-4)
  # A training image is its own nearest neighbour unless excluded.
  own = jnp.asarray(training[:3].astype(np.float32) / 255)
  assert nearest.nearest_distances(own, training).max() < 1e-3
  assert nearest.nearest_distances(own, training, exclude_self=True).min() > 0.01


def test_eval_writes_the_summary_figures_and_the_linear_probe(tmp_path):
  fixtures.write_celeba_files(str(tmp_path / "celeba"))
  flags = [
    "--config=configs/dvae.py:tiny",
    "--config.data.source=celeba_files",
    f"--config.data.path={tmp_path / 'celeba' / 'img_align_celeba.zip'}",
    f"--config.data.cache_dir={tmp_path / 'cache'}",
    f"--workdir={tmp_path / 'run'}",
  ]
  assert _cli(*flags).returncode == 0
  result = _cli(*flags, "--mode=eval")
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((tmp_path / "run" / "eval" / "summary.json").read_text())
  assert summary["reference"].startswith("2 images of the test split")
  assert set(summary["chains"]) == {"from_noise", "noise_injection", "from_prior", "from_prior_eq11", "nguyen"}
  assert len(summary["chains"]["from_noise"]["swd"]) == 5 and len(summary["chains"]["nguyen"]["swd"]) == 9
  for chain in summary["chains"].values():
    assert chain["best_swd"] == min(chain["swd"]) and chain["swd"][chain["best_step"]] == chain["best_swd"]
  assert summary["reconstruction"]["corrupted"]["mse_per_pixel"] > 0
  # Both readings of Fig. 3 start from the same d(z); only the caption's injects noise, so they part after it.
  caption, eq11 = summary["chains"]["from_prior"]["swd"], summary["chains"]["from_prior_eq11"]["swd"]
  assert caption[0] == eq11[0] and caption[1:] != eq11[1:]
  match = summary["prior_match"]
  assert match["num_codes"] == 2 and match["images"].startswith("2 images of the test split")
  assert 0 <= match["probe_accuracy"] <= 1 and match["frechet_distance"] >= 0 and "discriminator_accuracy" not in match
  markdown = (tmp_path / "run" / "eval" / "summary.md").read_text()
  assert "| from_noise |" in markdown and "| from_prior_eq11 |" in markdown
  assert f"| quadratic probe accuracy | {match['probe_accuracy']:.3f} | 0.5 |" in markdown
  for name in (
    "eval_swd_along_chains.png",
    "chain_from_noise.gif",
    "fig1_from_noise_eval.png",
    "fig3_from_prior_eval.png",
    "fig3_from_prior_eq11_eval.png",
  ):
    assert (tmp_path / "run" / "figures" / name).stat().st_size > 500
  probe = summary["linear_probe"]
  assert len(probe["accuracy"]) == 40 and all(0 <= a <= 1 for a in probe["accuracy"])
