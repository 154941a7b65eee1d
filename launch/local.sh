#!/usr/bin/env bash
# One host, all of its accelerators, one process: JAX shards each batch over every local device by itself.
#
#   launch/local.sh CONFIG WORKDIR [--config.x=y ...]
#   launch/local.sh configs/dvae.py workdir/dvae --config.data.source=celeba_files --config.data.path=...
#
# Environment:
#   CUDA_VISIBLE_DEVICES  which GPUs to use (default: all)
#   PYTHON                interpreter (default: python)
#   DRY_RUN=1             print the command instead of running it
set -euo pipefail
config=${1:?usage: $0 CONFIG WORKDIR [overrides]}
workdir=${2:?usage: $0 CONFIG WORKDIR [overrides]}
shift 2
command=("${PYTHON:-python}" -m dae_jax.main "--config=$config" "--workdir=$workdir" "$@")
if [[ "${DRY_RUN:-0}" == 1 ]]; then echo "${command[*]}"; else exec "${command[@]}"; fi
