#!/usr/bin/env bash
# Minikube environment: `up` starts the profile, `deploy` builds the images,
# loads them with `minikube image load` and installs config/default, `down`
# deletes the profile.
#
# Usage: minikube.sh up|deploy|down
# Environment: MINIKUBE_PROFILE (default cloudserver-lab),
# MINIKUBE_K8S_VERSION (e.g. v1.34.0; default: minikube's),
# MINIKUBE_START_FLAGS (extra flags for minikube start, e.g. "--driver=docker"),
# CONTAINER_TOOL, OPERATOR_IMAGE, MOCKCLOUD_IMAGE.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
profile=${MINIKUBE_PROFILE:-cloudserver-lab}

say() { printf 'minikube: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null || die "'$1' not found; $2"; }

running() { minikube status -p "$profile" --format '{{.APIServer}}' 2>/dev/null | grep -qx Running; }

up() {
  need minikube "install it: https://minikube.sigs.k8s.io/docs/start/"
  need kubectl "install kubectl 1.30 or newer"
  if running; then
    say "profile '$profile' is already running (context $profile)"
    return 0
  fi
  local -a flags=(--cpus=2 --memory=4g)
  [[ -n ${MINIKUBE_K8S_VERSION:-} ]] && flags+=("--kubernetes-version=$MINIKUBE_K8S_VERSION")
  # shellcheck disable=SC2206  # the caller's flags, split on spaces on purpose
  [[ -n ${MINIKUBE_START_FLAGS:-} ]] && flags+=($MINIKUBE_START_FLAGS)
  minikube start -p "$profile" "${flags[@]}"
  say "profile '$profile' is up; kubectl context: $profile"
}

deploy() {
  need minikube "install it: https://minikube.sigs.k8s.io/docs/start/"
  running || die "Minikube profile '$profile' is not running; run 'make minikube-up' first"
  local -a images
  mapfile -t images < <("$here/images.sh")
  ((${#images[@]})) || die "no image was built"
  local image
  for image in "${images[@]}"; do
    say "loading $image into '$profile'"
    minikube -p "$profile" image load "$image"
  done
  "$here/deploy.sh" "$profile" config/default "${images[@]}"
  cat <<EOT

CloudServer Lab is running in Minikube profile '$profile' (context $profile).
  mock cloud:     kubectl --context $profile -n cloudserver-system port-forward svc/mockcloud 18080:8080
                  then http://127.0.0.1:18080   (token: kubectl --context $profile -n cloudserver-system get secret cloud-credentials -o jsonpath='{.data.token}' | base64 -d)
  operator logs:  kubectl --context $profile -n cloudserver-system logs deploy/cloudserver-operator -f
  a sample:       kubectl --context $profile apply -f config/samples/cloudserver_v1_cloudserver_minimal.yaml
  scenarios:      mkdir -p .cluster && kubectl config view --minify --flatten --context $profile > .cluster/minikube.kubeconfig
                  bin/scenario-runner run --kubeconfig .cluster/minikube.kubeconfig scenarios/suites/smoke
EOT
}

down() {
  need minikube "install it: https://minikube.sigs.k8s.io/docs/start/"
  minikube delete -p "$profile"
}

cd "$repo"
case ${1:-} in
  up) up ;;
  deploy) deploy ;;
  down) down ;;
  *) die "usage: minikube.sh up|deploy|down" ;;
esac
