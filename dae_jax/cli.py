"""What every dae_jax command line shares: one-line errors with exit code 2, quiet library logs, and the
``--config`` flag's late errors."""

import ast
import functools
import logging as std_logging
import os
import sys
import traceback

from absl import flags, logging

from dae_jax.errors import InputError


def fail(message: str, code: int = 2):
  print(f"error: {message}", file=sys.stderr, flush=True)
  if code == 1:
    # A failed run is over (its checkpoints were waited for); exiting now keeps tensorstore's background reads
    # from printing tracebacks after the one line at interpreter shutdown.
    sys.stdout.flush()
    os._exit(code)
  sys.exit(code)


def _first_line(error: BaseException) -> str:
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return lines[0] if lines else type(error).__name__


def _causes(error: BaseException):
  while error is not None:
    yield error
    error = error.__cause__ or error.__context__


def _config_value(argv) -> str:
  """What ``--config`` was given (``path`` or ``path:variant``), or ""."""
  for index, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and index + 1 < len(argv):
      return argv[index + 1]
  return ""


def config_file_error_line(error: BaseException, argv) -> str | None:
  """One line naming the file and line where running the config file failed; None if the error did not come
  from the config file.

  ml_collections lets a SyntaxError (or a NameError, ImportError, ...) from the file escape as it is, and wraps a
  ValueError or TypeError in a new one whose text is a whole traceback; the original is in the chain of causes.
  """
  value = _config_value(argv)
  path = os.path.abspath(value.split(":", 1)[0]) if value else ""
  for cause in _causes(error):  # Outermost first: the exception that left the file, not what it handled.
    if isinstance(cause, SyntaxError):
      where, what = f"{cause.filename} line {cause.lineno}", f"{cause.msg}: {(cause.text or '').strip()}"
    else:
      frames = [f for f in traceback.extract_tb(cause.__traceback__) if path and os.path.abspath(f.filename) == path]
      if not frames:
        continue
      where, what = f"{frames[-1].filename} line {frames[-1].lineno}", _first_line(cause)
    return f"--config={value}: {where}: {type(cause).__name__}: {what}"
  return None


def _unknown_config_key_line(error: Exception, argv) -> str:
  """ml_collections names only the last part of an unknown key ('pth'), and suggests one; the line names the
  override as it was given."""
  text = str(error.args[0] if error.args else error).replace("\\n", "\n").replace("\\'", "'")
  key, *hint = [part.strip(" '\"") for part in text.splitlines() if part.strip(" '\"")]
  overrides = [a.split("=")[0] for a in argv if a.startswith("--config.")]
  named = [o for o in overrides if key in o.split(".")[1:]]
  override = (named or overrides or ["--config"])[0]
  return f"{override}: unknown config key {key!r}. {' '.join(hint)}".strip()


def _unknown_flag_line(error: flags.UnrecognizedFlagError) -> str:
  # absl keeps its suggestions only in the message: "... Did you mean: workdir ?".
  suggested = str(error).partition("Did you mean:")[2].strip(" ?")
  hint = f"; did you mean {', '.join('--' + s.strip() for s in suggested.split(','))}?" if suggested else ""
  return f"--{error.flagname}: unknown flag{hint}"


def flag_error_line(error: Exception, argv) -> str:
  """One line from the errors that flag and config-file parsing raise (some carry a whole traceback)."""
  located = config_file_error_line(error, argv)
  if located:
    return located
  if isinstance(error, flags.UnrecognizedFlagError):
    return _unknown_flag_line(error)
  if isinstance(error, (KeyError, AttributeError)):  # An unknown config key; ml_collections suggests one.
    return _unknown_config_key_line(error, argv)
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if "Traceback (most recent call last)" in str(error):
    head = lines[0].split("Traceback (most recent call last)")[0].strip()
    return f"{head} {lines[-1].split(': ', 1)[-1]}"
  return " ".join(lines)


def parse_flags(argv):
  """``app.run``'s flags_parser: a bad flag or config override, or a config file that fails to run, is one line
  and exit code 2. Without ``--config``, ``--config.KEY=VALUE`` overrides are returned after the other
  arguments, for the config the workdir recorded (``with_overrides``): absl knows them only with a config file."""
  overrides = [arg for arg in argv[1:] if arg.startswith("--config.")] if not _config_value(argv) else []
  try:
    return flags.FLAGS([arg for arg in argv if arg not in overrides]) + overrides
  except (flags.Error, InputError, ValueError, KeyError, AttributeError) as e:
    fail(flag_error_line(e, argv))
  except Exception as e:  # Anything else raised while the config file runs (SyntaxError, NameError, ...).
    line = config_file_error_line(e, argv)
    if line is None:
      raise
    fail(line)


class _QuietLibraries:
  """Drops INFO lines from orbax, which logs every step of every save, and from JAX's backend probing ("Unable
  to initialize backend 'tpu'" on every machine without one; the run logs its devices itself). Warnings and
  errors still show, except orbax's note that a read-only manager (sample, eval) is read-only."""

  _NOISY = ("/orbax/", "/jax/_src/xla_bridge.py")

  def filter(self, record) -> bool:
    if "/orbax/" in record.pathname and str(record.msg).startswith("Given directory is read only"):
      return False
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


def with_overrides(config, overrides: list):
  """``config`` (as a workdir's config.json reads back) with ``--config.KEY=VALUE`` overrides applied, each value
  read as the recorded value's type: true/false, numbers and tuples as Python literals, strings as given."""
  for override in overrides:
    name, equals, text = override.removeprefix("--config.").partition("=")
    if not equals:
      raise InputError(f"{override}: give a value, as in --config.{name}=VALUE")
    *groups, field = name.split(".")
    try:
      parent = functools.reduce(lambda group, key: group[key], groups, config)
      recorded = parent[field]
    except (KeyError, AttributeError, TypeError):
      raise InputError(
        f"--config.{name}: unknown config key {name!r}; the workdir's config.json has no such key"
      ) from None
    parent[field] = _override_value(override, text, recorded)
  return config


def _override_value(override: str, text: str, recorded):
  if isinstance(recorded, bool):
    if text.lower() not in ("true", "false"):
      raise InputError(f"{override}: expected true or false")
    return text.lower() == "true"
  if isinstance(recorded, str) or recorded is None:
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  if isinstance(recorded, float) and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if isinstance(recorded, (list, tuple)) and isinstance(value, (list, tuple)):
    return list(value)
  if type(value) is not type(recorded):
    raise InputError(f"{override}: expected {type(recorded).__name__} like {recorded!r}, got {text!r}")
  return value
