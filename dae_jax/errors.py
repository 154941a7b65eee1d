"""The errors the command line turns into one line on stderr.

``InputError`` is raised wherever a value from a config, a flag, a data file or an API argument is wrong (exit
code 2; library callers get an ordinary ``ValueError`` subclass). ``TrainingDiverged`` and ``CheckpointError`` end
a run that cannot go on (exit code 1).
"""


class InputError(ValueError):
  """A user-supplied value is not allowed; the message names it and what is allowed."""


class CheckpointError(RuntimeError):
  """No checkpoint in the workdir can be restored; the CLI exits 1 with the one line naming them."""


class TrainingDiverged(RuntimeError):
  """A loss became NaN or infinite; training stops instead of writing garbage checkpoints."""
