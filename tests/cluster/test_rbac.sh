# Least privilege: config/default is applied for real, then the operator's
# ServiceAccount is asked, through impersonation, what it may do. Every call
# the operator makes must be allowed; a sample of what it must never do must
# be denied.

# shellcheck shell=bash
OPERATOR_NS=cloudserver-system
OPERATOR_SA=system:serviceaccount:cloudserver-system:cloudserver-operator

# can_i WANT VERB RESOURCE [FLAGS...]: WANT is yes or no.
can_i() {
  local want=$1 got
  shift
  got=$(k auth can-i "$@" --as="$OPERATOR_SA" 2>/dev/null)
  [[ -n $got ]] || got="error"
  check_eq "operator can-i $*: $want" "$want" "$got"
}

test_rbac() {
  local ns
  section "rbac: config/default applied for real"
  check_ok "kubectl apply --server-side -k config/default" \
    k apply --server-side --force-conflicts -k "$REPO_DIR/config/default"

  section "rbac: what the operator needs is allowed"
  for ns in default tenant-a; do
    for verb in get list watch create update patch delete; do
      can_i yes "$verb" cloudservers.cloudserver.dev -n "$ns"
    done
    for verb in get update patch; do
      can_i yes "$verb" cloudservers.cloudserver.dev --subresource=status -n "$ns"
      can_i yes "$verb" cloudserversets.cloudserver.dev --subresource=status -n "$ns"
    done
    can_i yes update cloudservers.cloudserver.dev --subresource=finalizers -n "$ns"
    can_i yes update cloudserversets.cloudserver.dev --subresource=finalizers -n "$ns"
    for verb in get list watch patch; do
      can_i yes "$verb" cloudserversets.cloudserver.dev -n "$ns"
    done
    can_i yes create events -n "$ns"
    can_i yes patch events -n "$ns"
  done
  can_i yes list cloudservers.cloudserver.dev --all-namespaces
  can_i yes watch cloudserversets.cloudserver.dev --all-namespaces
  for verb in get list watch create update patch; do
    can_i yes "$verb" leases.coordination.k8s.io -n "$OPERATOR_NS"
  done
  for verb in get list watch; do
    can_i yes "$verb" secrets -n "$OPERATOR_NS"
  done

  section "rbac: what the operator must not do is denied"
  can_i no get secrets -n default
  can_i no list secrets --all-namespaces
  can_i no create secrets -n "$OPERATOR_NS"
  can_i no update secrets -n "$OPERATOR_NS"
  can_i no delete secrets -n "$OPERATOR_NS"
  can_i no create leases.coordination.k8s.io -n default
  can_i no delete leases.coordination.k8s.io -n "$OPERATOR_NS"
  can_i no create cloudserversets.cloudserver.dev -n default
  can_i no delete cloudserversets.cloudserver.dev -n default
  can_i no update cloudserversets.cloudserver.dev -n default
  can_i no update cloudserversets.cloudserver.dev --subresource=scale -n default
  can_i no deletecollection cloudservers.cloudserver.dev -n default
  can_i no delete events -n default
  can_i no create pods -n default
  can_i no get configmaps -n "$OPERATOR_NS"
  can_i no list nodes
  can_i no delete namespaces
  can_i no update customresourcedefinitions.apiextensions.k8s.io
  can_i no create clusterrolebindings.rbac.authorization.k8s.io
  can_i no impersonate serviceaccounts
  can_i no '*' '*'
}
