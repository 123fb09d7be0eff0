#!/usr/bin/env bash
# Run a command against a local control plane of its own: start one in a
# fresh folder (its own ports), export CSL_KUBECONFIG and CSL_CLUSTER_DIR to
# the command, and stop the plane and remove the folder afterwards, however
# the command ended. Exits with the command's status.
#
# Usage: scripts/with-local-plane.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/csl-plane.XXXXXX")
export CSL_CLUSTER_DIR=$dir
cleanup() {
  "$here/kind/local/down.sh" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$here/kind/local/up.sh"
export CSL_KUBECONFIG=$dir/kubeconfig
set +e
"$@"
rc=$?
set -e
exit $rc
