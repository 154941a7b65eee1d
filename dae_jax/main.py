"""Command line: ``python -m dae_jax.main --config=configs/daae.py --workdir=DIR [--mode=train|sample]``.

Flags and dispatch only. Bad input (a bad flag or config value, missing data) ends with one line on stderr
and exit code 2.
"""

import logging as std_logging
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from dae_jax.errors import InputError, TrainingDiverged

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/daae.py or configs/daae.py:demo.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and figures; resumed if it "
                               "holds a checkpoint.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "sample"], "train: train (resuming); sample: write the "
                          "paper's figures and trajectories from the latest checkpoint.")
flags.mark_flags_as_required(["config", "workdir"])


def _fail(message: str, code: int = 2):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def _flag_error_line(error: Exception, argv) -> str:
  """One line from the errors that flag and config-file parsing raise (some carry a whole traceback)."""
  if isinstance(error, (KeyError, AttributeError)):  # An unknown config key; ml_collections suggests one.
    text = str(error.args[0] if error.args else error).replace("\\n", "\n").replace("\\'", "'")
    key, *hint = [part.strip(" '\"") for part in text.splitlines() if part.strip(" '\"")]
    override = next((a.split("=")[0] for a in argv if a.startswith("--config.")), "--config")
    return f"{override}: unknown config key {key!r}. {' '.join(hint)}".strip()
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if "Traceback (most recent call last)" in str(error):
    head = lines[0].split("Traceback (most recent call last)")[0].strip()
    return f"{head} {lines[-1].split(': ', 1)[-1]}"
  return " ".join(lines)


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except (flags.Error, InputError, ValueError, KeyError, AttributeError) as e:
    _fail(_flag_error_line(e, argv))


class _QuietLibraries:
  """Drops INFO lines from orbax, which logs every step of every save; warnings and errors still show."""

  def filter(self, record) -> bool:
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname


def main(argv):
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow (for TensorBoard) is chatty at startup.
  if len(argv) > 1:
    _fail(f"unexpected arguments {argv[1:]}; everything is set with --config, --workdir and --mode")
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().python_handler.addFilter(_QuietLibraries())
  config = _CONFIG.value
  try:
    getattr(config, "seed")  # ml_collections reports a config file it could not load only on first use.
  except OSError as e:
    _fail(f"--config: {str(e).strip().splitlines()[-1].strip()}")
  try:
    if _MODE.value == "train":
      from dae_jax import train  # pylint: disable=g-import-not-at-top  (keeps --help and flag errors fast)
      train.train_and_evaluate(config, _WORKDIR.value)
    else:
      from dae_jax import pretrained  # pylint: disable=g-import-not-at-top
      directory = pretrained.write_samples(config, _WORKDIR.value)
      logging.info("Wrote figures and trajectories.npz to %s.", directory)
  except InputError as e:
    _fail(str(e))
  except TrainingDiverged as e:
    _fail(str(e), code=1)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
