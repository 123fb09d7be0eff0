#!/usr/bin/env bash
# Install the Debian packages CloudServer Lab needs. Idempotent: when every
# package is already installed it only runs dpkg-query and exits, so
# `make test` can call it on every run.
set -euo pipefail

packages=(
  build-essential pkg-config
  libcurl4-openssl-dev libcjson-dev libyaml-dev libmicrohttpd-dev
  libcunit1-dev faketime libfaketime
  openssl curl wrk valgrind shellcheck iproute2 util-linux
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done" >&2
