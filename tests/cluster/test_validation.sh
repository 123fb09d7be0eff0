# Bad input: every file in invalid/ must be refused by the API server with a
# message naming the field (its "# expect:" lines), both on create and on
# server-side apply, or, for "# update-of:" cases, on update. Every file in
# valid/ and config/samples/ must be accepted.

# shellcheck shell=bash
# recreate_base FILE NS: delete and create the object an update case starts from.
recreate_base() {
  k -n "$2" delete -f "$1" --ignore-not-found --wait=true >/dev/null 2>&1
  k -n "$2" apply --server-side -f "$1" >/dev/null 2>&1
}

test_validation() {
  local ns=validation f name base out status
  section "validation: valid objects are accepted"
  k create namespace "$ns" >/dev/null
  for f in "$TESTS_DIR"/valid/*.yaml "$REPO_DIR"/config/samples/*_*.yaml; do
    name=${f#"$REPO_DIR"/}
    base=$(case_header "$f" update-of)
    if [[ -n $base ]] && ! recreate_base "$TESTS_DIR/valid/$base" "$ns"; then
      fail "$name: creating its base $base failed"
      continue
    fi
    check_ok "$name accepted" k -n "$ns" apply --server-side -f "$f"
  done

  section "validation: defaults and allowed updates"
  check_eq "defaults filled in (networkType ipCount deletionPolicy failover timeouts)" \
    "standard 1 Delete true 3 5m 5m 5m" \
    "$(k -n "$ns" get cloudservers.v1.cloudserver.dev minimal-1 -o jsonpath='{.spec.networkType} {.spec.ipCount} {.spec.deletionPolicy} {.spec.failover.enabled} {.spec.failover.maxAttempts} {.spec.timeouts.create} {.spec.timeouts.resize} {.spec.timeouts.delete}' 2>&1)"
  check_eq "an allowed update (disk grown, cpu and memory changed) is stored" \
    "4 1536Mi 60Gi" \
    "$(k -n "$ns" get cloudservers.v1.cloudserver.dev base-server -o jsonpath='{.spec.cpu} {.spec.memory} {.spec.disk}' 2>&1)"
  check_ok "kubectl scale drives a CloudServerSet through its scale subresource" \
    k -n "$ns" scale cloudserversets.v1.cloudserver.dev/edge --replicas=7
  check_eq "the scale subresource set spec.replicas" "7" \
    "$(k -n "$ns" get cloudserversets.v1.cloudserver.dev edge -o jsonpath='{.spec.replicas}' 2>&1)"

  section "validation: invalid objects are refused, naming the field"
  local -a expects methods
  local m n=0
  for f in "$TESTS_DIR"/invalid/*.yaml; do
    name=invalid/$(basename "$f" .yaml)
    mapfile -t expects < <(case_header "$f" expect)
    if ((${#expects[@]} == 0)); then
      fail "$name: has no '# expect:' line"
      continue
    fi
    base=$(case_header "$f" update-of)
    if [[ -n $base ]]; then
      methods=("apply --server-side" replace)
    else
      methods=(create "apply --server-side")
    fi
    n=$((n + 1))
    for m in "${methods[@]}"; do
      if [[ -n $base ]] && ! recreate_base "$TESTS_DIR/valid/$base" "$ns"; then
        fail "$name ($m): creating its base $base failed"
        continue
      fi
      # shellcheck disable=SC2086  # $m is a verb and its flags
      out=$(k -n "$ns" $m -f "$f" 2>&1)
      status=$?
      check_refused "$name ($m)" "$out" "$status" "${expects[@]}"
      # A wrongly accepted object must not disturb the next case.
      ((status == 0)) && [[ -z $base ]] && k -n "$ns" delete -f "$f" --ignore-not-found >/dev/null 2>&1
    done
  done
  if ((n >= 15)); then
    pass "at least 15 distinct invalid CloudServers were tried ($n)"
  else
    fail "at least 15 distinct invalid CloudServers were tried" "only $n case files in invalid/"
  fi
}
