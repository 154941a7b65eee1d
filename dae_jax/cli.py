"""What every dae_jax command line shares: one-line errors with exit code 2, quiet library logs, and the
``--config`` flag's late errors."""

import logging as std_logging
import os
import sys

from absl import flags, logging

from dae_jax.errors import InputError


def fail(message: str, code: int = 2):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def flag_error_line(error: Exception, argv) -> str:
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


def parse_flags(argv):
  """``app.run``'s flags_parser: a bad flag or config override is one line and exit code 2."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, InputError, ValueError, KeyError, AttributeError) as e:
    fail(flag_error_line(e, argv))


class _QuietLibraries:
  """Drops INFO lines from orbax, which logs every step of every save, and from JAX's backend probing ("Unable
  to initialize backend 'tpu'" on every machine without one; the run logs its devices itself). Warnings and
  errors still show."""

  _NOISY = ("/orbax/", "/jax/_src/xla_bridge.py")

  def filter(self, record) -> bool:
    return record.levelno >= std_logging.WARNING or not any(part in record.pathname for part in self._NOISY)


def setup(argv, usage: str) -> None:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow is chatty at startup.
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; {usage}")
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().python_handler.addFilter(_QuietLibraries())


def loaded_config(config_flag):
  """The config, or exit 2: ml_collections reports a config file it could not load only on first use."""
  config = config_flag.value
  try:
    _ = config.seed  # The first use loads the file.
  except OSError as e:
    fail(f"--config: {str(e).strip().splitlines()[-1].strip()}")
  return config
