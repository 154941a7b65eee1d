"""The one exception type for bad user input.

Raised wherever a value from a config, a flag or an API argument is wrong. The CLI turns it into a single line
on stderr and exit code 2; library callers get an ordinary ``ValueError`` subclass.
"""


class InputError(ValueError):
  """A user-supplied value is not allowed; the message names it and what is allowed."""


class CheckpointError(RuntimeError):
  """No checkpoint in the workdir can be restored; the CLI exits 1 with the one line naming them."""


class TrainingDiverged(RuntimeError):
  """A loss became NaN or infinite; training stops instead of writing garbage checkpoints."""
