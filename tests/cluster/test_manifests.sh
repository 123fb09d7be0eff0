# Every manifest under config/ is accepted by the API server (server-side
# dry run of each kustomization), and the Deployments meet the "restricted"
# Pod Security Standard without a warning.

# shellcheck shell=bash
test_manifests() {
  local dir out status rendered
  section "manifests: server-side dry run of every kustomization"
  k create namespace manifests >/dev/null 2>&1
  for dir in crd rbac manager mockcloud default kind samples; do
    if ! rendered=$(k kustomize "$REPO_DIR/config/$dir" 2>&1); then
      fail "config/$dir renders with kubectl kustomize" "$rendered"
      continue
    fi
    # Only the samples carry no namespace of their own.
    local -a ns=()
    [[ $dir == samples ]] && ns=(-n manifests)
    out=$(k "${ns[@]}" apply --server-side --force-conflicts --dry-run=server -f - <<<"$rendered" 2>&1)
    status=$?
    if ((status != 0)); then
      fail "config/$dir accepted by server-side dry run" "$out"
    elif grep -q '^Warning' <<<"$out"; then
      fail "config/$dir accepted by server-side dry run without warnings" "$out"
    else
      pass "config/$dir accepted by server-side dry run ($(grep -c 'server dry run' <<<"$out") objects)"
    fi
  done
  # Pod Security admission warns on dry-run creates, so check a fresh
  # namespace labelled like cloudserver-system.
  k create namespace psa-check >/dev/null 2>&1
  k label namespace psa-check pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/warn=restricted --overwrite >/dev/null 2>&1
  for dir in manager mockcloud; do
    out=$(k kustomize "$REPO_DIR/config/$dir" | sed 's/namespace: cloudserver-system/namespace: psa-check/' |
      k apply --server-side --dry-run=server -f - 2>&1)
    status=$?
    if ((status == 0)) && ! grep -qi 'violate PodSecurity' <<<"$out"; then
      pass "config/$dir meets the restricted Pod Security Standard"
    else
      fail "config/$dir meets the restricted Pod Security Standard" "$out"
    fi
  done
}
