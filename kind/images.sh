#!/usr/bin/env bash
# Build the container images of the programs that exist in this tree:
# cloudserver-operator:dev from Dockerfile.operator (once operator/main.c
# exists) and mockcloud:dev from Dockerfile.mockcloud. Prints the names of
# the images built, one per line, on stdout.
#
# Environment: CONTAINER_TOOL (docker or podman; default docker),
# OPERATOR_IMAGE, MOCKCLOUD_IMAGE.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tool=${CONTAINER_TOOL:-docker}
operator_image=${OPERATOR_IMAGE:-cloudserver-operator:dev}
mockcloud_image=${MOCKCLOUD_IMAGE:-mockcloud:dev}

say() { printf 'images: %s\n' "$*" >&2; }
command -v "$tool" >/dev/null || { say "error: '$tool' not found; install Docker (or set CONTAINER_TOOL=podman)"; exit 1; }
"$tool" info >/dev/null 2>&1 || { say "error: '$tool' cannot reach its engine; is the daemon running?"; exit 1; }

build() {
  local image=$1 dockerfile=$2
  say "building $image from $dockerfile"
  "$tool" build -f "$repo/$dockerfile" -t "$image" "$repo" >&2
  echo "$image"
}

build "$mockcloud_image" Dockerfile.mockcloud
if [[ -f $repo/operator/main.c ]]; then
  build "$operator_image" Dockerfile.operator
else
  say "operator/main.c does not exist yet: no $operator_image image"
fi
