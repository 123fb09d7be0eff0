# The plane itself: it comes up (building when the cache is cold), answers
# kubectl, tells its true version, survives a second cluster-up, an API
# server restart keeps every object, and cluster-down leaves no process.

# shellcheck shell=bash
# plane_up: start the plane; returns non-zero if it did not come up.
plane_up() {
  local t0 out
  section "plane: start"
  # Built first, in the open: a cold build takes minutes and says how far it got.
  t0=$(date +%s%3N)
  if "$REPO_DIR/kind/local/build.sh" all 2>&1 | sed -u 's/^/        /'; then
    pass "kube-apiserver and etcd built or found in the cache ($(($(date +%s%3N) - t0)) ms)"
  else
    fail "kube-apiserver and etcd built or found in the cache"
    return 1
  fi
  t0=$(date +%s%3N)
  if out=$("$REPO_DIR/kind/local/up.sh" 2>&1); then
    pass "cluster-up reaches /readyz ($(($(date +%s%3N) - t0)) ms)"
    printf '%s\n' "$out" | grep -E 'ready in' | sed 's/^/        /'
  else
    fail "cluster-up reaches /readyz" "$out"
    return 1
  fi
  check_ok "kubectl get ns works with the written kubeconfig" k get ns default
  local want
  want=$(sed -n 's/^KUBE_VERSION=//p' "$REPO_DIR/kind/local/versions.env")
  check_eq "the API server tells its true version" "$want" \
    "$(k get --raw /version 2>&1 | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')"
  local pids_before pids_after
  pids_before=$(cat "$CSL_CLUSTER_DIR"/etcd.pid "$CSL_CLUSTER_DIR"/kube-apiserver.pid 2>/dev/null)
  if out=$("$REPO_DIR/kind/local/up.sh" 2>&1) && grep -q 'already up' <<<"$out"; then
    pids_after=$(cat "$CSL_CLUSTER_DIR"/etcd.pid "$CSL_CLUSTER_DIR"/kube-apiserver.pid 2>/dev/null)
    check_eq "a second cluster-up is harmless (same processes)" "$pids_before" "$pids_after"
  else
    fail "a second cluster-up is harmless" "$out"
  fi
}

test_restart_apiserver() {
  local port_before old_pid out
  section "plane: kube-apiserver restart"
  port_before=$(cat "$CSL_CLUSTER_DIR/apiserver.port")
  old_pid=$(cut -d' ' -f1 "$CSL_CLUSTER_DIR/kube-apiserver.pid")
  if out=$("$REPO_DIR/kind/local/restart-apiserver.sh" 2>&1); then
    pass "restart-apiserver brings it back ($(grep -o 'after [0-9]* ms' <<<"$out"))"
  else
    fail "restart-apiserver brings it back" "$out"
    return
  fi
  check_eq "same port after the restart" "$port_before" "$(cat "$CSL_CLUSTER_DIR/apiserver.port")"
  if [[ $(cut -d' ' -f1 "$CSL_CLUSTER_DIR/kube-apiserver.pid") != "$old_pid" ]] && ! proc_alive "$old_pid"; then
    pass "a new kube-apiserver process, the old one gone"
  else
    fail "a new kube-apiserver process, the old one gone" "old pid $old_pid"
  fi
  check_eq "objects survive the restart" "base-server" \
    "$(k -n validation get cloudservers.v1.cloudserver.dev base-server -o jsonpath='{.metadata.name}' 2>&1)"
}

# plane_down: stop the plane and prove nothing it started is left.
plane_down() {
  local pids pid left=() out
  section "plane: stop"
  pids=$(cut -d' ' -f1 "$CSL_CLUSTER_DIR"/etcd.pid "$CSL_CLUSTER_DIR"/kube-apiserver.pid 2>/dev/null)
  if out=$("$REPO_DIR/kind/local/down.sh" 2>&1); then
    pass "cluster-down stops the plane"
  else
    fail "cluster-down stops the plane" "$out"
  fi
  for pid in $pids; do
    proc_alive "$pid" && left+=("$pid")
  done
  # Anything else still running from this run's folder (its paths are in
  # every command line the plane was started with).
  local f
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    proc_alive "$pid" || continue
    tr '\0' ' ' <"$f" 2>/dev/null | grep -qF -- "$CSL_CLUSTER_DIR/" && left+=("$pid")
  done
  if ((${#left[@]})); then
    fail "no process left behind" "still running: ${left[*]}"
  else
    pass "no process left behind"
  fi
}
