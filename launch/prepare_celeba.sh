#!/usr/bin/env bash
# One-time preparation of CelebA (64x64, centre crop 140) for dae_jax, from whichever form you have.
#
#   launch/prepare_celeba.sh zip    PATH/img_align_celeba.zip   # the original zip (+ list_*.txt beside it)
#   launch/prepare_celeba.sh folder PATH/img_align_celeba       # the extracted folder of JPEGs
#   launch/prepare_celeba.sh tfds   DATA_DIR                    # TFDS celeb_a: uses the 5 original files in
#                                                               # DATA_DIR/downloads/manual/ if present, else
#                                                               # downloads (needs network; Google Drive may refuse)
#
# Environment:
#   CONFIG     config file whose data settings to use (default configs/dvae.py)
#   CACHE_DIR  where prepared arrays go (default ~/.cache/dae_jax)
#   SPLITS     splits to prepare (default "train validation test")
#   DRY_RUN=1  print the commands instead of running them
#
# Train afterwards with the same source flags, e.g.
#   python -m dae_jax.main --config=configs/dvae.py --workdir=workdir/dvae \
#       --config.data.source=celeba_files --config.data.path=PATH/img_align_celeba.zip
set -euo pipefail

form=${1:?usage: $0 zip|folder|tfds PATH}
path=${2:?usage: $0 zip|folder|tfds PATH}
config=${CONFIG:-configs/dvae.py}
cache_dir=${CACHE_DIR:-~/.cache/dae_jax}
splits=${SPLITS:-train validation test}

run() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then echo "$*"; else "$@"; fi
}

case "$form" in
  zip|folder)
    source_flags=(--config.data.source=celeba_files "--config.data.path=$path")
    ;;
  tfds)
    run python -c "import tensorflow_datasets as tfds; tfds.builder('celeb_a', data_dir='$path').download_and_prepare()"
    source_flags=(--config.data.source=celeba "--config.data.data_dir=$path")
    ;;
  *)
    echo "error: unknown form '$form'; choose zip, folder or tfds" >&2
    exit 2
    ;;
esac

for split in $splits; do
  run python -m dae_jax.prepare_data "--config=$config" "${source_flags[@]}" "--config.data.split=$split" \
    "--config.data.cache_dir=$cache_dir"
done
