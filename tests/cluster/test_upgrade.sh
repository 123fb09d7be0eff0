# The upgrade path: objects written while the CRD served only v1alpha1 (and
# stored them as v1alpha1) are readable as v1 once the current CRD is
# installed, with the fields v1 added filled in by their defaults; then the
# stored objects are migrated to v1 and v1alpha1 is dropped from
# status.storedVersions, as a real upgrade would finish.

# shellcheck shell=bash
# etcd_value KEY: the raw value etcd holds under KEY (through etcd's JSON gateway).
etcd_value() {
  local port key
  port=$(cat "$CSL_CLUSTER_DIR/etcd.port")
  key=$(printf '%s' "$1" | base64 -w0)
  curl -fsS --max-time 5 -X POST "http://127.0.0.1:$port/v3/kv/range" -d "{\"key\":\"$key\"}" |
    sed -n 's/.*"value":"\([^"]*\)".*/\1/p' | base64 -d 2>/dev/null
}

# wait_v1_served: until `kubectl get` finds the v1 resource (CRD established
# and discovery refreshed).
wait_v1_served() {
  local i
  for ((i = 0; i < 60; i++)); do
    k -n upgrade get cloudservers.v1.cloudserver.dev >/dev/null 2>&1 && return 0
    rm -rf "$CSL_CLUSTER_DIR/kubectl-cache"
    sleep 0.5
  done
  return 1
}

test_upgrade() {
  local ns=upgrade crd=cloudservers.cloudserver.dev out key
  section "upgrade: v1alpha1-only CRD, then the current CRD"
  check_ok "the old CRD (v1alpha1 only) installs" \
    k apply --server-side -f "$TESTS_DIR/testdata/cloudservers-v1alpha1-only.yaml"
  check_ok "the old CRD becomes Established" \
    k wait --for=condition=Established "crd/$crd" --timeout=60s
  k create namespace "$ns" >/dev/null
  check_ok "objects are created through v1alpha1" k -n "$ns" create -f - <<'YAML'
apiVersion: cloudserver.dev/v1alpha1
kind: CloudServer
metadata:
  name: old-minimal
spec:
  cpu: 1
  memory: 1Gi
  disk: 10Gi
  image: debian-11
  zone: hk-1a
---
apiVersion: cloudserver.dev/v1alpha1
kind: CloudServer
metadata:
  name: old-retain
spec:
  cpu: 8
  memory: 16Gi
  disk: 100Gi
  image: debian-11
  zone: hk-1b
  networkType: bgp
  deletionPolicy: Retain
YAML
  check_ok "status is written through v1alpha1's status subresource" \
    k -n "$ns" patch cloudservers.v1alpha1.cloudserver.dev old-retain --subresource=status --type=merge \
    -p '{"status":{"phase":"Running","instanceID":"i-0042","ipAddresses":["203.0.113.7"]}}'
  out=$(k -n "$ns" get cloudservers.v1.cloudserver.dev 2>&1)
  check_refused "v1 is not served before the upgrade" "$out" $? "cloudservers"
  key=/registry/cloudserver.dev/cloudservers/$ns/old-minimal
  out=$(etcd_value "$key")
  if grep -qF '"apiVersion":"cloudserver.dev/v1alpha1"' <<<"$out"; then
    pass "etcd holds the object as v1alpha1"
  else
    fail "etcd holds the object as v1alpha1" "$key: ${out:-<nothing>}"
  fi

  check_ok "the current CRD installs over the old one" \
    k apply --server-side --force-conflicts -f "$REPO_DIR/config/crd/bases/cloudserver.dev_cloudservers.yaml"
  check_ok "the current CRD becomes Established" \
    k wait --for=condition=Established "crd/$crd" --timeout=60s
  if wait_v1_served; then pass "v1 is served"; else fail "v1 is served" "no v1 after 30 s"; fi
  check_eq "old objects read as v1 keep their fields" \
    "cloudserver.dev/v1 1 1Gi 10Gi debian-11 hk-1a standard Delete" \
    "$(k -n "$ns" get cloudservers.v1.cloudserver.dev old-minimal -o jsonpath='{.apiVersion} {.spec.cpu} {.spec.memory} {.spec.disk} {.spec.image} {.spec.zone} {.spec.networkType} {.spec.deletionPolicy}' 2>&1)"
  check_eq "fields added in v1 read with their defaults" \
    "1 true 3 5m 5m 5m" \
    "$(k -n "$ns" get cloudservers.v1.cloudserver.dev old-minimal -o jsonpath='{.spec.ipCount} {.spec.failover.enabled} {.spec.failover.maxAttempts} {.spec.timeouts.create} {.spec.timeouts.resize} {.spec.timeouts.delete}' 2>&1)"
  check_eq "non-default values and status survive" \
    "bgp Retain Running i-0042 203.0.113.7" \
    "$(k -n "$ns" get cloudservers.v1.cloudserver.dev old-retain -o jsonpath='{.spec.networkType} {.spec.deletionPolicy} {.status.phase} {.status.instanceID} {.status.ipAddresses[0]}' 2>&1)"
  check_eq "storedVersions lists both versions until migration" "v1alpha1 v1" \
    "$(k get crd "$crd" -o jsonpath='{.status.storedVersions[*]}' 2>&1)"

  section "upgrade: storage migration to v1"
  local obj ok=1
  for obj in old-minimal old-retain; do
    out=$(k -n "$ns" get cloudservers.v1.cloudserver.dev "$obj" -o json 2>&1 | k -n "$ns" replace -f - 2>&1) ||
      { ok=0; fail "rewrite $obj as v1" "$out"; }
  done
  ((ok)) && pass "every object rewritten through v1"
  out=$(etcd_value "$key")
  if grep -qF '"apiVersion":"cloudserver.dev/v1"' <<<"$out" && grep -qF '"ipCount":1' <<<"$out"; then
    pass "etcd now holds the object as v1, defaults persisted"
  else
    fail "etcd now holds the object as v1, defaults persisted" "$key: ${out:-<nothing>}"
  fi
  check_ok "v1alpha1 is dropped from status.storedVersions" \
    k patch crd "$crd" --subresource=status --type=merge -p '{"status":{"storedVersions":["v1"]}}'
  check_eq "storedVersions is v1 alone" "v1" \
    "$(k get crd "$crd" -o jsonpath='{.status.storedVersions[*]}' 2>&1)"

  section "upgrade: both versions stay readable and agree"
  check_ok "a v1 object with v1-era fields is created" k -n "$ns" apply --server-side -f "$REPO_DIR/config/samples/cloudserver_v1_cloudserver.yaml"
  out=$(k -n "$ns" get cloudservers.v1alpha1.cloudserver.dev web-1 -o jsonpath='{.apiVersion} {.spec.backup.schedule} {.spec.timeouts.create} {.spec.credentialsSecretRef.name}' 2>/dev/null)
  check_eq "read as v1alpha1 it has the same fields" "cloudserver.dev/v1alpha1 0 */6 * * * 5m cloud-credentials" "$out"
  out=$(k -n "$ns" get cloudservers.v1alpha1.cloudserver.dev web-1 -o name 2>&1)
  if grep -q 'deprecated' <<<"$out"; then
    pass "v1alpha1 answers with a deprecation warning"
  else
    fail "v1alpha1 answers with a deprecation warning" "$out"
  fi
  check_ok "the current CloudServerSet CRD installs" \
    k apply --server-side -f "$REPO_DIR/config/crd/bases/cloudserver.dev_cloudserversets.yaml"
  check_ok "the CloudServerSet CRD becomes Established" \
    k wait --for=condition=Established crd/cloudserversets.cloudserver.dev --timeout=60s
}
