"""Where numbers go: JSON lines and TensorBoard events in the workdir, and a progress line in the log.

The workdir may be a local directory or a ``gs://`` URL (through ``storage``). TensorBoard events are written
by tensorboardX, which needs no TensorFlow (it writes gs:// through google-cloud-storage).
"""

from collections.abc import Callable, Mapping
import json
import os
import time

from absl import logging
import ml_collections
import numpy as np

from dae_jax import storage

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
TENSORBOARD_DIR = "tensorboard"


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  storage.write_text(storage.path(workdir) / CONFIG_FILE, config.to_json(indent=2, sort_keys=True))


def read_config(workdir: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(json.loads((storage.path(workdir) / CONFIG_FILE).read_text()))


class _AppendedLines:
  """A local file opened for appending: each line costs one small write."""

  def __init__(self, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    self._file = path.open("a")

  def append(self, line: str) -> None:
    self._file.write(line)
    self._file.flush()

  def close(self) -> None:
    self._file.close()


class _RewrittenLines:
  """An object store's file (gs://), which cannot be appended to: the whole text, starting from what a resumed
  run already wrote, is kept here and uploaded whole after each line (one upload, so never half a file)."""

  def __init__(self, path):
    self._path = path
    self._text = path.read_text() if path.exists() else ""

  def append(self, line: str) -> None:
    self._text += line
    storage.write_text(self._path, self._text)

  def close(self) -> None:
    pass


def _lines(path):
  return _RewrittenLines(path) if storage.is_remote(path) else _AppendedLines(path)


def drop_lines(path, drop: Callable[[dict], bool]) -> None:
  """Rewrites the JSON-lines file without the records ``drop`` picks (atomically; nothing to do if none)."""
  if not path.exists():
    return
  lines = path.read_text().splitlines(keepends=True)
  kept = [line for line in lines if line.strip() and not drop(json.loads(line))]
  if len(kept) != len(lines):
    storage.write_text(path, "".join(kept))


def is_eval_record(record: dict) -> bool:
  return all(key == "step" or key.startswith("eval/") for key in record)


class MetricsWriter:
  """Appends scalars to ``metrics.jsonl`` and TensorBoard; appending keeps a resumed run's history whole."""

  def __init__(self, workdir: str, drop: Callable[[dict], bool] | None = None):
    """``drop`` picks earlier records to remove first: a resumed run's lines after its checkpoint (it logs those
    steps again), or an evaluation's own lines at the step it measures again."""
    import tensorboardX  # Only where metrics are written.

    directory = storage.path(workdir)
    if drop is not None:
      drop_lines(directory / METRICS_FILE, drop)
    self._jsonl = _lines(directory / METRICS_FILE)
    # tensorboardX names event files by the second and the host only: without a suffix of our own, a second
    # writer in the same second (eval right after training) would overwrite the first one's file. Nanoseconds
    # keep the names in the order they were written, the order TensorBoard reads them in.
    self._summary = tensorboardX.SummaryWriter(
      logdir=str(directory / TENSORBOARD_DIR), filename_suffix=f".{time.time_ns()}.{os.getpid()}"
    )

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    values = {k: float(v) for k, v in values.items()}
    self._jsonl.append(json.dumps({"step": step, **values}) + "\n")
    for name, value in values.items():
      self._summary.add_scalar(name, value, global_step=step)
    self._summary.flush()

  def images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """uint8 [h, w, 3] images, e.g. the figure grids."""
    for name, image in images.items():
      self._summary.add_image(name, np.asarray(image, np.uint8), global_step=step, dataformats="HWC")
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
