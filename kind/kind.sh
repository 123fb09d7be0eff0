#!/usr/bin/env bash
# kind environment: `up` creates the cluster from kind/cluster.yaml,
# `deploy` builds and loads the images and installs everything
# (config/kind: config/default plus the mock cloud on NodePort 30080, mapped
# to 127.0.0.1:18080 on this machine), `down` deletes the cluster.
#
# Usage: kind.sh up|deploy|down
# Environment: KIND_CLUSTER (default cloudserver-lab), KIND_NODE_IMAGE,
# CONTAINER_TOOL, OPERATOR_IMAGE, MOCKCLOUD_IMAGE.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
name=${KIND_CLUSTER:-cloudserver-lab}
context=kind-$name

say() { printf 'kind: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null || die "'$1' not found; $2"; }

exists() { kind get clusters 2>/dev/null | grep -qx "$name"; }

up() {
  need kind "install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  need kubectl "install kubectl 1.30 or newer"
  if exists; then
    say "cluster '$name' already exists (context $context)"
    return 0
  fi
  local -a image=()
  [[ -n ${KIND_NODE_IMAGE:-} ]] && image=(--image "$KIND_NODE_IMAGE")
  kind create cluster --name "$name" --config "$here/cluster.yaml" "${image[@]}" --wait 180s
  say "cluster '$name' is up; kubectl context: $context"
}

deploy() {
  need kind "install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  exists || die "no kind cluster '$name'; run 'make kind-up' first"
  local -a images
  mapfile -t images < <("$here/images.sh")
  ((${#images[@]})) || die "no image was built"
  say "loading ${images[*]} into '$name'"
  kind load docker-image "${images[@]}" --name "$name"
  "$here/deploy.sh" "$context" config/kind "${images[@]}"
  cat <<EOT

CloudServer Lab is running in kind cluster '$name' (context $context).
  mock cloud:     http://127.0.0.1:18080   (token: kubectl --context $context -n cloudserver-system get secret cloud-credentials -o jsonpath='{.data.token}' | base64 -d)
  operator logs:  kubectl --context $context -n cloudserver-system logs deploy/cloudserver-operator -f
  a sample:       kubectl --context $context apply -f config/samples/cloudserver_v1_cloudserver_minimal.yaml
  scenarios:      mkdir -p .cluster && kind get kubeconfig --name $name > .cluster/kind.kubeconfig
                  bin/scenario-runner run --kubeconfig .cluster/kind.kubeconfig scenarios/suites/smoke
EOT
}

down() {
  need kind "install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  if exists; then
    kind delete cluster --name "$name"
  else
    say "no kind cluster '$name'"
  fi
}

cd "$repo"
case ${1:-} in
  up) up ;;
  deploy) deploy ;;
  down) down ;;
  *) die "usage: kind.sh up|deploy|down" ;;
esac
