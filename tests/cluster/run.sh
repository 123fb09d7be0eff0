#!/usr/bin/env bash
# The local control plane's tests: bring up a private plane (building
# kube-apiserver and etcd when the cache is cold), then check the CRDs'
# validation, the v1alpha1 to v1 upgrade, the operator's RBAC and every
# manifest in config/ against it, and bring it down leaving no process.
#
# The plane lives in a temporary folder with ports of its own, so a plane
# started with `make cluster-up` is never touched. Whatever happens (a
# failed check, Ctrl-C) the trap stops the plane. The folder, with the
# logs, is kept when something failed, and its path printed.
#
# Ends with the line "cluster: N passed, M failed"; exits 1 on any failure.
set -uo pipefail
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$TESTS_DIR/../.." && pwd)
# shellcheck source=tests/cluster/lib.sh
. "$TESTS_DIR/lib.sh"
# shellcheck source=kind/local/common.sh
. "$REPO_DIR/kind/local/common.sh"
for f in "$TESTS_DIR"/test_*.sh; do
  # shellcheck source=/dev/null
  . "$f"
done

if ! command -v kubectl >/dev/null; then
  echo "cluster: kubectl is not installed; these tests need it (any version from 1.30 on)" >&2
  echo "cluster: 0 passed, 1 failed"
  exit 1
fi

CSL_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cloudserver-lab-cluster.XXXXXX")
export CSL_CLUSTER_DIR
export KUBECONFIG=$CSL_CLUSTER_DIR/kubeconfig
started=$(date +%s)

interrupted=0
finish() {
  trap - EXIT INT TERM
  if [[ -f $CSL_CLUSTER_DIR/etcd.pid || -f $CSL_CLUSTER_DIR/kube-apiserver.pid ]]; then
    plane_down
  fi
  echo
  if ((TESTS_FAILED)); then
    printf 'failed: %s\n' "${FAILED_NAMES[@]}"
    echo "logs and state kept in $CSL_CLUSTER_DIR"
  else
    rm -rf "$CSL_CLUSTER_DIR"
  fi
  echo "took $(($(date +%s) - started)) s"
  echo "cluster: $TESTS_PASSED passed, $TESTS_FAILED failed, $TESTS_SKIPPED skipped"
  if ((TESTS_FAILED || interrupted)); then exit 1; fi
  exit 0
}
trap finish EXIT
trap 'interrupted=1; echo "interrupted" >&2; exit 130' INT TERM

test_static
test_envs
if plane_up; then
  test_upgrade
  test_validation
  test_rbac
  test_manifests
  test_restart_apiserver
  plane_down
fi
