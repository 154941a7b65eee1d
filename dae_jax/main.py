"""Command line: ``python -m dae_jax.main --config=configs/daae.py --workdir=DIR [--mode=train|sample]``.

Flags and dispatch only. Bad input (a bad flag or config value, missing data) ends with one line on stderr
and exit code 2.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from dae_jax import cli
from dae_jax.errors import CheckpointError, InputError, TrainingDiverged

_CONFIG = config_flags.DEFINE_config_file(
  "config",
  None,
  "Config file, e.g. configs/daae.py or configs/daae.py:demo. Required to train; --mode=sample and --mode=eval "
  "use the workdir's own config.json when it is not given.",
  lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Directory for checkpoints, metrics and figures; resumed if it holds a checkpoint."
)
_MODE = flags.DEFINE_enum(
  "mode",
  "train",
  ["train", "sample", "eval", "chain_study", "theory"],
  "train: train (resuming); sample: write the paper's figures and trajectories from the "
  "latest checkpoint (with --config.chain.num_steps=-1, the chain eval recommended); eval: measure the latest "
  "checkpoint (eval/summary.md); chain_study: sweep chain settings on the latest checkpoint "
  "(chain_study/table.md); theory: the score-identity check of configs/theory.py.",
)
_COORDINATOR = flags.DEFINE_string(
  "coordinator_address",
  "",
  "host:port of process 0, for a run over several "
  "processes that JAX cannot detect by itself (not needed on TPU VMs or SLURM).",
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 0, "Processes in the run (with --coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer("process_id", -1, "This process's index, 0 .. num_processes - 1.")
flags.mark_flags_as_required(["workdir"])


def _dispatch(config, workdir: str) -> None:
  # Imported per mode: --help and flag errors stay fast, and only this module imports the training loop.
  if _MODE.value == "train":
    from dae_jax import train

    train.train_and_evaluate(config, workdir)
  elif _MODE.value == "eval":
    from dae_jax.eval import evaluate

    evaluate.run(config, workdir)
  elif _MODE.value == "chain_study":
    from dae_jax.eval import chain_study

    chain_study.run(config, workdir)
  elif _MODE.value == "theory":
    from dae_jax.theory import report

    report.run(config, workdir)
  else:
    from dae_jax import pretrained

    directory = pretrained.write_samples(config, workdir)
    logging.info("Wrote figures and trajectories.npz to %s.", directory)


def _config(overrides: list):
  """The --config given, or for sample, eval and chain_study the one the workdir's run recorded, with the
  ``--config.KEY=VALUE`` overrides given without --config."""
  if _CONFIG.value is not None:
    return cli.loaded_config(_CONFIG)
  if _MODE.value not in ("sample", "eval", "chain_study"):
    raise InputError(f"--config is required for --mode={_MODE.value}, e.g. --config=configs/daae.py")
  from dae_jax import metrics_io, storage

  if not (storage.path(_WORKDIR.value) / metrics_io.CONFIG_FILE).exists():
    raise InputError(f"--workdir={_WORKDIR.value!r} holds no {metrics_io.CONFIG_FILE}; give --config")
  return cli.with_overrides(metrics_io.read_config(_WORKDIR.value), overrides)


def main(argv):
  overrides = [arg for arg in argv[1:] if arg.startswith("--config.")]
  cli.setup([arg for arg in argv if arg not in overrides], "everything is set with --config, --workdir and --mode")
  try:
    config = _config(overrides)
    from dae_jax import distributed  # Imports JAX: after the flags are known to be good.

    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    _dispatch(config, _WORKDIR.value)
  except InputError as e:
    cli.fail(str(e))
  except (TrainingDiverged, CheckpointError) as e:
    cli.fail(str(e), code=1)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
