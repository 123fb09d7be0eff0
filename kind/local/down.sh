#!/usr/bin/env bash
# Stop the local control plane: kube-apiserver, then etcd, each by the PID
# up.sh recorded (checked against its start time, so a recycled PID is never
# hit), waiting until both have exited. Removes the etcd data, the
# certificates and the kubeconfig; keeps the logs for a post-mortem.
# Harmless when nothing runs.
set -euo pipefail
# shellcheck source=kind/local/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ -d $CSL_CLUSTER_DIR ]] || { log "not running (no $CSL_CLUSTER_DIR)"; exit 0; }
exec 8>"$CSL_CLUSTER_DIR/lock"
flock 8

stopped=()
for name in kube-apiserver etcd; do
  pid=$(recorded_pid "$name")
  stop_recorded "$name"
  [[ -n $pid ]] && stopped+=("$name (pid $pid)")
done
rm -rf "$CSL_CLUSTER_DIR/etcd" "$CSL_CLUSTER_DIR/pki" "$CSL_CLUSTER_DIR/kubeconfig" \
  "$CSL_CLUSTER_DIR"/*.port "$CSL_CLUSTER_DIR"/*.args
if ((${#stopped[@]})); then
  log "stopped ${stopped[*]}"
else
  log "not running"
fi
