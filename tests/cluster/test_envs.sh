# kind and Minikube cannot run here (no container engine), so their scripts
# run against stand-ins for kind, minikube, docker and kubectl
# (stubs/tool), and the calls they make are checked against the tools'
# documented command lines.

# shellcheck shell=bash
# env_run SCRIPT ARGS...: run a kind/ script with the stubs first on PATH.
env_run() {
  PATH="$STUB_DIR/bin:$PATH" "$REPO_DIR/kind/$1" "${@:2}" >"$STUB_DIR/out" 2>&1
}

# called NAME PATTERN: a recorded call matches the extended regex PATTERN.
called() {
  if grep -qE -- "$2" "$STUB_DIR/calls"; then
    pass "$1"
  else
    fail "$1" "no call matching: $2" "calls made:" "$(cat "$STUB_DIR/calls")"
  fi
}

test_envs() {
  section "kind and Minikube scripts (stand-in tools)"
  STUB_DIR=$CSL_CLUSTER_DIR/stubs
  mkdir -p "$STUB_DIR/bin"
  local t
  for t in kind minikube docker kubectl; do
    ln -sf "$TESTS_DIR/stubs/tool" "$STUB_DIR/bin/$t"
  done
  export STUB_DIR

  : >"$STUB_DIR/calls"
  check_ok "kind.sh up succeeds" env_run kind.sh up
  called "kind-up creates the cluster from kind/cluster.yaml" \
    "^kind create cluster --name cloudserver-lab --config $REPO_DIR/kind/cluster.yaml --wait 180s$"
  : >"$STUB_DIR/calls"
  check_ok "kind.sh up again is harmless" env_run kind.sh up
  if grep -q 'create cluster' "$STUB_DIR/calls"; then
    fail "kind-up does not create an existing cluster again" "$(cat "$STUB_DIR/calls")"
  else
    pass "kind-up does not create an existing cluster again"
  fi
  : >"$STUB_DIR/calls"
  check_ok "kind.sh deploy succeeds" env_run kind.sh deploy
  called "kind-deploy builds the mockcloud image" "^docker build -f $REPO_DIR/Dockerfile.mockcloud -t mockcloud:dev $REPO_DIR$"
  called "kind-deploy loads the images into the cluster" "^kind load docker-image mockcloud:dev.* --name cloudserver-lab$"
  called "kind-deploy applies config/kind server-side" \
    "^kubectl --context kind-cloudserver-lab apply --server-side --force-conflicts -k $REPO_DIR/config/kind$"
  called "kind-deploy waits for the CRDs" "^kubectl --context kind-cloudserver-lab wait --for=condition=Established .*crd/cloudservers.cloudserver.dev"
  called "kind-deploy waits for mockcloud to roll out" "rollout status deployment/mockcloud"
  if [[ -f $REPO_DIR/operator/main.c ]]; then
    called "kind-deploy builds the operator image" "^docker build -f $REPO_DIR/Dockerfile.operator -t cloudserver-operator:dev"
  else
    called "kind-deploy scales the operator to 0 while it has no image" "scale deployment/cloudserver-operator --replicas=0"
  fi
  if grep -q 'http://127.0.0.1:18080' "$STUB_DIR/out"; then
    pass "kind-deploy prints how to reach the mock cloud and run scenarios"
  else
    fail "kind-deploy prints how to reach the mock cloud and run scenarios" "$(cat "$STUB_DIR/out")"
  fi
  : >"$STUB_DIR/calls"
  check_ok "kind.sh down succeeds" env_run kind.sh down
  called "kind-down deletes the cluster" "^kind delete cluster --name cloudserver-lab$"
  : >"$STUB_DIR/calls"
  if env_run kind.sh deploy; then
    fail "kind-deploy without a cluster fails" "$(cat "$STUB_DIR/out")"
  elif grep -q "make kind-up" "$STUB_DIR/out"; then
    pass "kind-deploy without a cluster fails, saying to run make kind-up"
  else
    fail "kind-deploy without a cluster fails, saying to run make kind-up" "$(cat "$STUB_DIR/out")"
  fi

  : >"$STUB_DIR/calls"
  check_ok "minikube.sh up succeeds" env_run minikube.sh up
  called "minikube-up starts the profile" "^minikube start -p cloudserver-lab --cpus=2 --memory=4g$"
  : >"$STUB_DIR/calls"
  check_ok "minikube.sh deploy succeeds" env_run minikube.sh deploy
  called "minikube-deploy loads the images" "^minikube -p cloudserver-lab image load mockcloud:dev$"
  called "minikube-deploy applies config/default server-side" \
    "^kubectl --context cloudserver-lab apply --server-side --force-conflicts -k $REPO_DIR/config/default$"
  : >"$STUB_DIR/calls"
  check_ok "minikube.sh down succeeds" env_run minikube.sh down
  called "minikube-down deletes the profile" "^minikube delete -p cloudserver-lab$"
}
