"""The core install runs without TensorFlow: the CLI trains, samples and evaluates with TensorFlow made
impossible to import, TensorBoard's reader finds the events, and only data.source=celeba asks for the extra.

The demo's data at smoke-test size (``configs/daae.py:tiny``) keeps the suite's time down.
"""

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from PIL import Image
import pytest
from tensorboard.backend.event_processing import event_accumulator

from conftest import REPO

pytestmark = pytest.mark.slow

# Every finder already on sys.meta_path is wrapped so it cannot see TensorFlow: `import tensorflow` fails and
# importlib.util.find_spec("tensorflow") is None, exactly as where TensorFlow is not installed.
SITECUSTOMIZE = textwrap.dedent(
  """
  import sys

  class _WithoutTensorFlow:
    def __init__(self, finder):
      self._finder = finder

    def find_spec(self, name, path=None, target=None):
      if name.split(".")[0] == "tensorflow":
        return None
      find = getattr(self._finder, "find_spec", None)
      return find(name, path, target) if find else None

    def __getattr__(self, attribute):
      return getattr(self._finder, attribute)

  sys.meta_path[:] = [_WithoutTensorFlow(finder) for finder in sys.meta_path]
  """
)

# Run inside that environment: the import really fails, and the TF-free parts work there.
CHECKS = textwrap.dedent(
  """
  import importlib.util, sys
  import numpy as np
  from PIL import Image
  assert importlib.util.find_spec("tensorflow") is None
  try:
    import tensorflow
  except ModuleNotFoundError as error:
    print("import failed:", error)
  else:
    raise SystemExit("tensorflow imported")
  from dae_jax.data import celeba, image_files
  from dae_jax.errors import InputError
  folder = sys.argv[1]
  Image.fromarray(np.full((40, 30, 3), 90, np.uint8)).save(folder + "/a.jpg")
  images = image_files.load(folder, 0, 16, 1)
  print("images", images.shape, int(images.min()), int(images.max()))
  try:
    celeba.load(sys.argv[2], "train", 140, 64, 3)
  except InputError as error:
    print("celeba:", error)
  assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow"]
  """
)


@pytest.fixture
def without_tensorflow(tmp_path):
  """The environment of a process that cannot import TensorFlow."""
  site = tmp_path / "site"
  site.mkdir()
  (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
  return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def _run(env, *args, timeout=300):
  return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _prepared_celeba(tmp_path):
  """A data_dir that looks like a prepared TFDS celeb_a, so the only thing missing is TensorFlow."""
  version = tmp_path / "tfds" / "celeb_a" / "2.1.0"
  version.mkdir(parents=True)
  (version / "dataset_info.json").write_text("{}")
  return tmp_path / "tfds"


def test_tensorflow_cannot_be_imported_there_and_the_tf_free_parts_work(without_tensorflow, tmp_path):
  folder = tmp_path / "images"
  folder.mkdir()
  done = _run(without_tensorflow, "-c", CHECKS, str(folder), str(_prepared_celeba(tmp_path)))
  assert done.returncode == 0, done.stderr[-3000:]
  assert "import failed: No module named 'tensorflow'" in done.stdout
  assert "images (1, 16, 16, 1) 90 90" in done.stdout
  assert "celeba: data.source='celeba' needs TensorFlow: pip install 'dae_jax[tfds]'" in done.stdout
  # With TensorFlow importable, the same check fails at its first assertion.
  assert _run(os.environ, "-c", CHECKS, str(folder), str(tmp_path)).returncode != 0


def _events(workdir) -> event_accumulator.EventAccumulator:
  accumulator = event_accumulator.EventAccumulator(str(workdir / "tensorboard"), size_guidance={"images": 0})
  accumulator.Reload()
  return accumulator


def _png(path) -> np.ndarray:
  return np.asarray(Image.open(path).convert("RGB"))


def test_train_sample_and_eval_run_without_tensorflow_and_tensorboard_reads_the_events(without_tensorflow, tmp_path):
  workdir = tmp_path / "run"
  cli = ["-m", "dae_jax.main", "--config=configs/daae.py:tiny", f"--workdir={workdir}"]
  for mode in ("train", "sample", "eval"):
    done = _run(without_tensorflow, *cli, f"--mode={mode}")
    assert done.returncode == 0, f"--mode={mode}: {done.stderr[-3000:]}"
  *train_lines, eval_line = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [line["step"] for line in train_lines] == [2, 4, 6] and eval_line["step"] == 6
  events = _events(workdir)
  for lines in (train_lines, [eval_line]):
    tags = {name for name in lines[0] if name != "step"}
    assert tags and tags <= set(events.Tags()["scalars"])
    for name in tags:
      logged = [(line["step"], np.float32(line[name])) for line in lines]
      assert [(e.step, np.float32(e.value)) for e in events.Scalars(name)] == logged
  assert all(name.startswith("eval/") for name in eval_line if name != "step")
  for name in ("fig1_from_noise", "fig2_noise_injection", "fig3_from_prior"):
    [image] = events.Images(name)
    assert image.step == 6
    shown = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(shown, _png(workdir / "figures" / f"{name}.png"))  # The figure itself.
    assert (workdir / "samples" / f"{name}.png").exists()
  assert "eval/swd_along_chains" in events.Tags()["images"]
  assert (workdir / "samples" / "trajectories.npz").exists() and (workdir / "eval" / "summary.json").exists()


def test_the_tfds_source_is_one_line_naming_the_extra(without_tensorflow, tmp_path):
  done = _run(
    without_tensorflow,
    "-m",
    "dae_jax.main",
    "--config=configs/daae.py:tiny",
    f"--workdir={tmp_path / 'run'}",
    "--config.data.source=celeba",
    f"--config.data.data_dir={_prepared_celeba(tmp_path)}",
  )
  assert done.returncode == 2, done.stderr[-3000:]
  last = done.stderr.strip().splitlines()[-1]
  assert "data.source='celeba' needs TensorFlow: pip install 'dae_jax[tfds]'" in last
  assert "data.source=celeba_files" in last
