"""metrics.jsonl, config.json and TensorBoard events, read back with TensorBoard's own reader, locally and on a
local GCS emulator."""

import io
import json
import os
import socket
import subprocess
import sys
import time

import ml_collections
import numpy as np
from PIL import Image
import pytest
from tensorboard.backend.event_processing import event_accumulator

from dae_jax import metrics_io

BUCKET = "metrics-io-test"


def _events(directory) -> event_accumulator.EventAccumulator:
  accumulator = event_accumulator.EventAccumulator(str(directory), size_guidance={"images": 0, "scalars": 0})
  accumulator.Reload()
  return accumulator


def _grid(seed: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (24, 40, 3), dtype=np.uint8)


def _decoded(image_event) -> np.ndarray:
  return np.asarray(Image.open(io.BytesIO(image_event.encoded_image_string)).convert("RGB"))


def _write_a_run(workdir: str) -> None:
  writer = metrics_io.MetricsWriter(workdir)
  writer.scalars(10, {"loss": 2.5, "kl": np.float32(0.25)})
  writer.scalars(20, {"loss": 1.5, "kl": 0.125})
  writer.images(20, {"figures/from_noise": _grid(0)})
  writer.close()


def test_scalars_and_images_reach_tensorboard_and_the_json_lines(tmp_path):
  _write_a_run(str(tmp_path))
  events = _events(tmp_path / "tensorboard")
  assert sorted(events.Tags()["scalars"]) == ["kl", "loss"]
  assert [(e.step, e.value) for e in events.Scalars("loss")] == [(10, 2.5), (20, 1.5)]
  assert [(e.step, e.value) for e in events.Scalars("kl")] == [(10, 0.25), (20, 0.125)]
  [image] = events.Images("figures/from_noise")
  assert (image.step, image.height, image.width) == (20, 24, 40)
  np.testing.assert_array_equal(_decoded(image), _grid(0))  # PNG: every pixel survives.
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line) for line in lines] == [
    {"step": 10, "loss": 2.5, "kl": 0.25},
    {"step": 20, "loss": 1.5, "kl": 0.125},
  ]


def test_a_resumed_run_appends_to_the_history(tmp_path):
  _write_a_run(str(tmp_path))
  again = metrics_io.MetricsWriter(str(tmp_path))
  again.scalars(30, {"loss": 1.0})
  again.close()
  steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert steps == [10, 20, 30]
  assert [e.step for e in _events(tmp_path / "tensorboard").Scalars("loss")] == [10, 20, 30]


def test_config_round_trips_and_is_written_whole(tmp_path):
  config = ml_collections.ConfigDict({"model": {"objective": "daae", "widths": (32, 64)}, "seed": 3})
  workdir = tmp_path / "new" / "run"  # Not there yet: written config makes it.
  metrics_io.write_config(str(workdir), config)
  assert sorted(os.listdir(workdir)) == ["config.json"]  # No temporary file left behind.
  back = metrics_io.read_config(str(workdir))
  assert back.model.objective == "daae" and tuple(back.model.widths) == (32, 64) and back.seed == 3


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture
def gcs():
  """A local GCS emulator with one bucket: (its URL, a google-cloud-storage bucket handle on it)."""
  port = _free_port()
  command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host=127.0.0.1", f"--port={port}"]
  server = subprocess.Popen(
    [*command, "--in-memory", f"--default-bucket={BUCKET}", "--quiet"],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  deadline = time.time() + 30
  while True:
    try:
      socket.create_connection(("127.0.0.1", port), timeout=1).close()
      break
    except OSError:
      if time.time() > deadline:
        server.kill()
        raise
      time.sleep(0.2)
  url = f"http://127.0.0.1:{port}"
  from google.cloud import storage

  previous = os.environ.get("STORAGE_EMULATOR_HOST")
  os.environ["STORAGE_EMULATOR_HOST"] = url  # Read when the client is made.
  bucket = storage.Client(project="test").bucket(BUCKET)
  if previous is None:
    del os.environ["STORAGE_EMULATOR_HOST"]
  else:
    os.environ["STORAGE_EMULATOR_HOST"] = previous
  yield url, bucket
  server.kill()
  server.wait()


# Run in a fresh process: etils.epath picks its gs:// backend once per process, from EPATH_USE_TF.
_WRITE_ON_GCS = f"""
import sys
import ml_collections
sys.path.insert(0, {os.path.dirname(__file__)!r})
import test_metrics_io as t
from dae_jax import metrics_io

workdir = "gs://{BUCKET}/run"
metrics_io.write_config(workdir, ml_collections.ConfigDict({{"seed": 7}}))
t._write_a_run(workdir)
again = metrics_io.MetricsWriter(workdir)  # A resumed run: the object is rewritten, its history kept.
again.scalars(30, {{"loss": 1.0}})
again.close()
print("seed", metrics_io.read_config(workdir).seed)
"""


@pytest.mark.slow
def test_a_gs_workdir_holds_the_config_json_lines_and_events(gcs, tmp_path):
  url, bucket = gcs
  # EPATH_USE_TF=false: TensorFlow's gfile, where installed, would go to the real GCS, not the emulator.
  env = {**os.environ, "STORAGE_EMULATOR_HOST": url, "EPATH_USE_TF": "false"}
  done = subprocess.run([sys.executable, "-c", _WRITE_ON_GCS], env=env, capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "seed 7" in done.stdout
  assert json.loads(bucket.blob("run/config.json").download_as_text()) == {"seed": 7}
  lines = bucket.blob("run/metrics.jsonl").download_as_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [10, 20, 30]
  event_blobs = list(bucket.client.list_blobs(BUCKET, prefix="run/tensorboard/"))
  assert len(event_blobs) == 2 and all(b.name.split("/")[-1].startswith("events.out.tfevents.") for b in event_blobs)
  for blob in event_blobs:
    blob.download_to_filename(str(tmp_path / blob.name.split("/")[-1]))
  events = _events(tmp_path)
  assert [e.step for e in events.Scalars("loss")] == [10, 20, 30]
  np.testing.assert_array_equal(_decoded(events.Images("figures/from_noise")[0]), _grid(0))


def test_a_resume_drops_the_lines_it_logs_again_and_an_eval_replaces_its_own(tmp_path):
  writer = metrics_io.MetricsWriter(str(tmp_path))
  for step in (2, 4, 6):
    writer.scalars(step, {"loss": float(step)})
  writer.scalars(4, {"eval/from_noise_best_swd": 1.0})
  writer.close()
  resumed = metrics_io.MetricsWriter(
    str(tmp_path), drop=lambda r: r["step"] > 4 and not metrics_io.is_eval_record(r)
  )  # Resumed from the step-4 checkpoint: step 6 is logged again.
  resumed.scalars(6, {"loss": 6.5})
  resumed.close()
  again = metrics_io.MetricsWriter(str(tmp_path), drop=lambda r: r["step"] == 4 and metrics_io.is_eval_record(r))
  again.scalars(4, {"eval/from_noise_best_swd": 2.0})
  again.close()
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert records == [
    {"step": 2, "loss": 2.0},
    {"step": 4, "loss": 4.0},
    {"step": 6, "loss": 6.5},
    {"step": 4, "eval/from_noise_best_swd": 2.0},
  ]
