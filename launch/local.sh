#!/usr/bin/env bash
# One host, all of its accelerators, one process: JAX shards each batch over every local device by itself.
#
#   launch/local.sh CONFIG WORKDIR [--config.x=y ...]
#   launch/local.sh configs/dvae.py workdir/dvae --config.data.source=celeba_files --config.data.path=...
#
# Environment:
#   CUDA_VISIBLE_DEVICES  which GPUs to use (default: all)
#   PYTHON                interpreter (default: python3, which every Linux has; `python` may not exist)
#   DRY_RUN=1             print the command, quoted so that it can be pasted into a shell
set -euo pipefail
config=${1:?usage: $0 CONFIG WORKDIR [overrides]}
workdir=${2:?usage: $0 CONFIG WORKDIR [overrides]}
shift 2
command=("${PYTHON:-python3}" -m dae_jax.main "--config=$config" "--workdir=$workdir" "$@")
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  printf -v quoted ' %q' "${command[@]}"
  echo "${quoted:1}"
else
  exec "${command[@]}"
fi
