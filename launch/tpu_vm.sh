#!/usr/bin/env bash
# A Cloud TPU VM slice: create it, install dae_jax on every worker, run the same command on all of them.
# JAX finds the slice's workers by itself (GCE metadata server); dae_jax starts its runtime when there are several.
#
#   launch/tpu_vm.sh create                       # create the TPU VM
#   launch/tpu_vm.sh setup                        # clone (or update) REPO and install it on every worker
#   launch/tpu_vm.sh data gs://BUCKET/celeba      # copy a folder of data to ~/dae_jax_data/ on every worker
#   launch/tpu_vm.sh run CONFIG WORKDIR [--config.x=y ...]   # start training on every worker, detached
#   launch/tpu_vm.sh logs [WORKER]                # follow a worker's log (default 0, the one that logs progress)
#   launch/tpu_vm.sh stop                         # stop the run on every worker
#   launch/tpu_vm.sh delete
#   launch/tpu_vm.sh check-python                 # is $PYTHON (default python3) new enough for dae_jax?
#
# On each worker: the clone is ~/dae_jax, the interpreter ~/dae_jax_venv (Python 3.11 from uv: the default image
# tpu-ubuntu2204-base ships 3.10, which jax 0.10 and flax 0.12 no longer support), the log ~/dae_jax_logs/HOST.log.
# A run is started with nohup, so it survives the ssh session; `logs` re-attaches to its output.
#
# Data: every worker reads its own copy. Upload the CelebA files once (img_align_celeba.zip with
# list_eval_partition.txt and list_attr_celeba.txt beside it) to gs://BUCKET/celeba, then
#   launch/tpu_vm.sh data gs://BUCKET/celeba
#   launch/tpu_vm.sh run configs/dvae.py WORKDIR --config.data.source=celeba_files \
#     '--config.data.path=~/dae_jax_data/img_align_celeba.zip'
# (quote the ~: dae_jax expands it on the worker). Each worker prepares its own cache on its local disk
# (data.cache_dir, default ~/.cache/dae_jax) the first time. A Filestore share mounted on every worker works too.
#
# Environment:
#   TPU_NAME (default dae-jax), ZONE (default us-central2-b), ACCELERATOR (default v4-32),
#   RUNTIME (default tpu-ubuntu2204-base), REPO (git URL of dae_jax, required for setup),
#   WORKDIR  a gs://BUCKET/PATH URL, or a directory every worker sees (an NFS/Filestore mount);
#   DRY_RUN=1 prints the gcloud commands, quoted so that they can be pasted into a shell.
set -euo pipefail
tpu=${TPU_NAME:-dae-jax}
zone=${ZONE:-us-central2-b}

run() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then
    local quoted
    printf -v quoted ' %q' "$@"
    echo "${quoted:1}"
  else
    "$@"
  fi
}

# Defined here, and sent to the workers through `declare -f`, so the check tested locally is the one they run.
check_python() {
  local python=$1 version major minor
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || {
    echo "error: cannot run Python interpreter '$python'" >&2
    exit 2
  }
  IFS=. read -r major minor <<<"$version"
  if ((major < 3 || (major == 3 && minor < 11))); then
    echo "error: '$python' is Python $version; dae_jax needs Python 3.11 or newer (jax 0.10, flax 0.12)" >&2
    exit 2
  fi
}

on_workers() {
  run gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker="$1" --command="$2"
}

# Single-quoted: $HOME and the rest expand on the worker, not here.
setup_command() {
  local repo
  repo=$(printf %q "$1")
  echo "set -euo pipefail; $(declare -f check_python);"' export PATH="$HOME/.local/bin:$PATH";
    python3 -m pip install --user --quiet --upgrade uv;
    if [ -d "$HOME/dae_jax/.git" ]; then git -C "$HOME/dae_jax" pull --ff-only --quiet;
    else git clone --quiet '"$repo"' "$HOME/dae_jax"; fi;
    [ -x "$HOME/dae_jax_venv/bin/python3" ] || uv venv --quiet --python 3.11 "$HOME/dae_jax_venv";
    check_python "$HOME/dae_jax_venv/bin/python3";
    uv pip install --quiet --python "$HOME/dae_jax_venv/bin/python3" -e "$HOME/dae_jax" "jax[tpu]"'
}

run_command() {
  local arguments
  printf -v arguments ' %q' "$@"
  echo "set -euo pipefail; $(declare -f check_python);"' check_python "$HOME/dae_jax_venv/bin/python3";
    mkdir -p "$HOME/dae_jax_logs"; cd "$HOME/dae_jax"; log="$HOME/dae_jax_logs/$(hostname).log";
    nohup "$HOME/dae_jax_venv/bin/python3" -m dae_jax.main'"$arguments"' >>"$log" 2>&1 </dev/null &
    echo $! >"$HOME/dae_jax_logs/run.pid"; echo "$(hostname): started pid $!, log $log"'
}

case "${1:?usage: $0 create|setup|data|run|logs|stop|delete|check-python}" in
  create)
    run gcloud compute tpus tpu-vm create "$tpu" --zone="$zone" --accelerator-type="${ACCELERATOR:-v4-32}" \
      --version="${RUNTIME:-tpu-ubuntu2204-base}"
    ;;
  setup)
    : "${REPO:?set REPO to the git URL of dae_jax}"
    on_workers all "$(setup_command "$REPO")"
    ;;
  data)
    source=${2:?usage: $0 data gs://BUCKET/FOLDER}
    on_workers all "mkdir -p \"\$HOME/dae_jax_data\" && gsutil -m rsync -r $(printf %q "$source") \"\$HOME/dae_jax_data\""
    ;;
  run)
    config=${2:?usage: $0 run CONFIG WORKDIR [overrides]}
    workdir=${3:?usage: $0 run CONFIG WORKDIR [overrides]}
    shift 3
    on_workers all "$(run_command "--config=$config" "--workdir=$workdir" "$@")"
    ;;
  logs)
    on_workers "${2:-0}" 'tail -n 200 -F "$HOME"/dae_jax_logs/*.log'
    ;;
  stop)
    on_workers all 'kill "$(cat "$HOME/dae_jax_logs/run.pid")"'
    ;;
  delete)
    run gcloud compute tpus tpu-vm delete "$tpu" --zone="$zone" --quiet
    ;;
  check-python)
    check_python "${PYTHON:-python3}"
    echo "${PYTHON:-python3} is Python 3.11 or newer"
    ;;
  *)
    echo "error: unknown command '$1'; choose create, setup, data, run, logs, stop, delete or check-python" >&2
    exit 2
    ;;
esac
