"""Where numbers go: JSON lines and TensorBoard events in the workdir, and a progress line in the log."""

from collections.abc import Mapping
import json
import os
import time

from absl import logging
import ml_collections
import numpy as np

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
TENSORBOARD_DIR = "tensorboard"


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONFIG_FILE)
  with open(path + ".tmp", "w") as f:
    f.write(config.to_json(indent=2, sort_keys=True))
  os.replace(path + ".tmp", path)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  with open(os.path.join(workdir, CONFIG_FILE)) as f:
    return ml_collections.ConfigDict(json.load(f))


class MetricsWriter:
  """Appends scalars to ``metrics.jsonl`` and TensorBoard; appending keeps a resumed run's history whole."""

  def __init__(self, workdir: str):
    import tensorflow as tf  # Slow; only when metrics are written.

    self._tf = tf
    self._jsonl = open(os.path.join(workdir, METRICS_FILE), "a")
    self._summary = tf.summary.create_file_writer(os.path.join(workdir, TENSORBOARD_DIR))

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    values = {k: float(v) for k, v in values.items()}
    self._jsonl.write(json.dumps({"step": step, **values}) + "\n")
    self._jsonl.flush()
    with self._summary.as_default(step=step):
      for name, value in values.items():
        self._tf.summary.scalar(name, value)
    self._summary.flush()

  def images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """uint8 [h, w, 3] images, e.g. the figure grids."""
    with self._summary.as_default(step=step):
      for name, image in images.items():
        self._tf.summary.image(name, image[None], step=step)
    self._summary.flush()

  def close(self) -> None:
    self._jsonl.close()
    self._summary.close()


class Progress:
  """steps/s since the last report and the ETA to ``total_steps``."""

  def __init__(self, start_step: int, total_steps: int):
    self._total = total_steps
    self._last_step, self._last_time = start_step, time.perf_counter()

  def report(self, step: int) -> dict:
    now = time.perf_counter()
    rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_step, self._last_time = step, now
    return {"steps_per_sec": rate, "eta_sec": (self._total - step) / rate if rate > 0 else float("inf")}


def log_line(step: int, total: int, metrics: Mapping[str, float], progress: Mapping | None = None) -> None:
  parts = [f"{k}={float(v):.4g}" for k, v in sorted(metrics.items())]
  if progress:
    parts.append(f"{progress['steps_per_sec']:.2f} steps/s, ETA {progress['eta_sec'] / 60:.1f} min")
  logging.info("step %d/%d: %s", step, total, ", ".join(parts))
