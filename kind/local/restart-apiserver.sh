#!/usr/bin/env bash
# Restart kube-apiserver alone, on the same port with the same flags, so
# clients holding .cluster/kubeconfig see their watches break and must
# re-list and re-watch: what watch-resilience tests need. etcd keeps running,
# so every object survives.
#
# Usage: restart-apiserver.sh [DOWN_SECONDS]   stay down that long (default 0)
set -euo pipefail
# shellcheck source=kind/local/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

down_s=${1:-0}
[[ $down_s =~ ^[0-9]+([.][0-9]+)?$ ]] || die "DOWN_SECONDS must be a number of seconds, not '$down_s'"
[[ -d $CSL_CLUSTER_DIR ]] || die "the local plane is not up; run 'make cluster-up'"
exec 8>"$CSL_CLUSTER_DIR/lock"
flock 8
[[ -n $(recorded_pid etcd) && -f $CSL_CLUSTER_DIR/kube-apiserver.args ]] ||
  die "the local plane is not up; run 'make cluster-up'"

t0=$(now_ms)
old=$(recorded_pid kube-apiserver)
stop_recorded kube-apiserver
log "kube-apiserver${old:+ (pid $old)} stopped"
sleep "$down_s"
start_apiserver
status=0
wait_ready "${CSL_CLUSTER_TIMEOUT:-90}" || status=$?
if ((status != 0)); then
  tail -n 20 "$CSL_CLUSTER_DIR/kube-apiserver.log" >&2 || true
  die "kube-apiserver did not come back (log: $CSL_CLUSTER_DIR/kube-apiserver.log)"
fi
log "kube-apiserver (pid $(recorded_pid kube-apiserver)) ready again after $(($(now_ms) - t0)) ms"
