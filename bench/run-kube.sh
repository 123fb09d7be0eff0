#!/usr/bin/env bash
# The Kubernetes client's benchmarks, on a local control plane of their
# own (scripts/with-local-plane.sh starts and stops it): create throughput
# beside `kubectl create -f` and the 10,000-object List parse (kube_create),
# then the informer's memory per object (informer_mem: fed objects, then
# objects created on the plane). Figures, not gates.
#
# Env: CSL_BENCH_DIR (the bench binaries), BENCH_KUBE_COUNT (objects per
# create run, 300), BENCH_INFORMER_PLANE (1: also create 10,000 CloudServers
# on the plane for the informer — slow, ~1 min; default 0).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench_dir=${CSL_BENCH_DIR:-$here/../build/default/bench}
repo=$(cd "$here/.." && pwd)

if [[ -z ${CSL_KUBECONFIG:-} ]]; then
  exec "$repo/scripts/with-local-plane.sh" "$0" "$@"
fi

kubectl --kubeconfig "$CSL_KUBECONFIG" apply --server-side -f "$repo/config/crd/bases" >/dev/null
echo "== Kubernetes client: create throughput and List parsing"
"$bench_dir/kube_create" --kubeconfig "$CSL_KUBECONFIG" --count "${BENCH_KUBE_COUNT:-300}"
echo
echo "== Informer: memory per object (fed)"
"$bench_dir/informer_mem" --feed
if [[ ${BENCH_INFORMER_PLANE:-0} == 1 ]]; then
  echo
  echo "== Informer: memory per object (on the plane)"
  "$bench_dir/informer_mem"
fi
