# Shared settings for the local control plane scripts (sourced, not run).
#
# One idea: everything that costs minutes (Go module downloads, the compile
# cache, the two binaries) lives outside the clone under CSL_CACHE, keyed by
# version, so a fresh clone or `make clean` never pays for it again; everything
# that belongs to one running plane (certificates, etcd data, logs, PIDs,
# kubeconfig) lives in CSL_CLUSTER_DIR, which `cluster-down` may delete.

# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables below are used by the scripts that source this

LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LOCAL_DIR/../.." && pwd)

# shellcheck source=kind/local/versions.env
. "$LOCAL_DIR/versions.env"
KUBE_VERSION=${CSL_KUBE_VERSION:-$KUBE_VERSION}
ETCD_VERSION=${CSL_ETCD_VERSION:-$ETCD_VERSION}

CSL_CACHE=${CSL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudserver-lab}
KUBE_APISERVER_BIN=$CSL_CACHE/kube-apiserver/$KUBE_VERSION/kube-apiserver
ETCD_BIN=$CSL_CACHE/etcd/$ETCD_VERSION/etcd

CSL_CLUSTER_DIR=${CSL_CLUSTER_DIR:-$REPO_DIR/.cluster}

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

log() { printf 'local-plane: %s\n' "$*" >&2; }
die() { printf 'local-plane: error: %s\n' "$*" >&2; exit 1; }

# Seconds since the epoch with millisecond precision, for timings.
now_ms() { date +%s%3N; }
