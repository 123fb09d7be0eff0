#!/usr/bin/env bash
# Install CloudServer Lab into the cluster of a kubectl context: CRDs,
# RBAC, the operator and the mock cloud, from a kustomization in config/.
# Used by kind.sh and minikube.sh after they have loaded the images.
#
# Usage: deploy.sh CONTEXT KUSTOMIZATION IMAGES_LOADED...
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
context=$1
kustomization=$2
shift 2
loaded=" $* "
ns=cloudserver-system
operator_image=${OPERATOR_IMAGE:-cloudserver-operator:dev}

say() { printf 'deploy: %s\n' "$*" >&2; }
kc() { kubectl --context "$context" "$@"; }

command -v kubectl >/dev/null || { say "error: kubectl not found"; exit 1; }
kc get --raw /readyz >/dev/null || { say "error: the cluster of context '$context' is not reachable"; exit 1; }

# Remember what ran before, so pods of an existing Deployment pick up the
# freshly loaded images (same tag, new content).
existing=$(kc -n "$ns" get deployments -o name 2>/dev/null || true)

say "installing $kustomization into context $context"
kc apply --server-side --force-conflicts -k "$repo/$kustomization"
kc wait --for=condition=Established --timeout=60s \
  crd/cloudservers.cloudserver.dev crd/cloudserversets.cloudserver.dev

if [[ $loaded != *" $operator_image "* ]]; then
  say "no operator image was loaded (operator/main.c missing?): scaling the operator to 0"
  kc -n "$ns" scale deployment/cloudserver-operator --replicas=0
fi
if [[ -n $existing ]]; then
  # shellcheck disable=SC2086  # one word per Deployment
  kc -n "$ns" rollout restart $existing
fi
kc -n "$ns" rollout status deployment/mockcloud --timeout=180s
if [[ $loaded == *" $operator_image "* ]]; then
  kc -n "$ns" rollout status deployment/cloudserver-operator --timeout=180s
fi
kc -n "$ns" get pods -o wide
