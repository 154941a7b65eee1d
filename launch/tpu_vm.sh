#!/usr/bin/env bash
# A Cloud TPU VM slice: create it (once), install dae_jax on every worker, run the same command on all of them.
# On TPU VMs jax.distributed.initialize() finds every worker by itself.
#
#   launch/tpu_vm.sh create                      # create the TPU VM
#   launch/tpu_vm.sh setup                       # install dae_jax from REPO on every worker
#   launch/tpu_vm.sh run CONFIG WORKDIR [--config.x=y ...]
#   launch/tpu_vm.sh delete
#
# Environment:
#   TPU_NAME (default dae-jax), ZONE (default us-central2-b), ACCELERATOR (default v4-32),
#   RUNTIME (default tpu-ubuntu2204-base), REPO (git URL of dae_jax, required for setup),
#   WORKDIR must be a directory every worker sees (an NFS/Filestore mount; gs:// is not supported yet);
#   DRY_RUN=1 prints the gcloud commands.
set -euo pipefail
tpu=${TPU_NAME:-dae-jax}
zone=${ZONE:-us-central2-b}
run() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then echo "$*"; else "$@"; fi
}
on_all_workers() {
  run gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all --command="$1"
}
case "${1:?usage: $0 create|setup|run|delete}" in
  create)
    run gcloud compute tpus tpu-vm create "$tpu" --zone="$zone" --accelerator-type="${ACCELERATOR:-v4-32}" \
      --version="${RUNTIME:-tpu-ubuntu2204-base}"
    ;;
  setup)
    : "${REPO:?set REPO to the git URL of dae_jax}"
    on_all_workers "git clone $REPO dae_jax && cd dae_jax && pip install -e . 'jax[tpu]'"
    ;;
  run)
    config=${2:?usage: $0 run CONFIG WORKDIR [overrides]}
    workdir=${3:?usage: $0 run CONFIG WORKDIR [overrides]}
    shift 3
    on_all_workers "cd dae_jax && python -m dae_jax.main --config=$config --workdir=$workdir $*"
    ;;
  delete)
    run gcloud compute tpus tpu-vm delete "$tpu" --zone="$zone" --quiet
    ;;
  *)
    echo "error: unknown command '$1'; choose create, setup, run or delete" >&2
    exit 2
    ;;
esac
