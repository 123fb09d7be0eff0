#!/usr/bin/env bash
# Start the local control plane: etcd and kube-apiserver on loopback, with
# certificates made here by openssl, as controller-runtime's envtest does.
#
# The idea: a real API server (OpenAPI and CEL validation, watch, RBAC,
# status subresources, optimistic concurrency) for tests, with nothing else
# of Kubernetes: no kubelet, scheduler or controller-manager. Everything it
# writes goes to .cluster/ (CSL_CLUSTER_DIR): pki/, etcd data, logs, the
# PIDs and .cluster/kubeconfig. Running it while the plane is up changes
# nothing; a plane left half-dead is stopped and started afresh.
#
# Environment: CSL_CLUSTER_TIMEOUT (seconds to wait for /readyz, default 90),
# CSL_CLUSTER_DIR, CSL_CACHE, CSL_KUBE_VERSION, CSL_ETCD_VERSION.
set -euo pipefail
# shellcheck source=kind/local/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

timeout_s=${CSL_CLUSTER_TIMEOUT:-90}
t_start=$(now_ms)
for tool in openssl curl setsid flock base64; do
  command -v "$tool" >/dev/null || die "'$tool' is needed; run 'make deps' (openssl, curl, util-linux, coreutils)"
done

"$LOCAL_DIR/build.sh" all
t_built=$(now_ms)

mkdir -p "$CSL_CLUSTER_DIR"
exec 8>"$CSL_CLUSTER_DIR/lock"
flock 8

kubeconfig=$CSL_CLUSTER_DIR/kubeconfig
etcd_pid=$(recorded_pid etcd)
api_pid=$(recorded_pid kube-apiserver)
if [[ -n $etcd_pid && -n $api_pid && -f $kubeconfig && $(apiserver_get /readyz) == ok ]]; then
  log "already up (etcd pid $etcd_pid, kube-apiserver pid $api_pid); kubeconfig: $kubeconfig"
  exit 0
fi
if [[ -n $etcd_pid || -n $api_pid ]]; then
  log "found a half-running plane; stopping it first"
fi
stop_recorded kube-apiserver
stop_recorded etcd

pki=$CSL_CLUSTER_DIR/pki
rm -rf "$pki" "$CSL_CLUSTER_DIR/etcd" "$kubeconfig" "$CSL_CLUSTER_DIR"/*.port
mkdir -p "$pki"
chmod 700 "$pki"

# ---------------------------------------------------------------- certificates
# ECDSA P-256 throughout: generated in milliseconds, accepted by Go's TLS and
# by kube-apiserver as a service-account signing key (ES256).

# sign NAME SUBJECT EXTENSIONS: a key and a certificate signed by the CA.
sign() {
  local name=$1 subj=$2 ext=$3
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$pki/$name.key" -out "$pki/$name.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -CAserial "$pki/ca.srl" -days 365 -sha256 \
    -extfile <(printf '%s\n' "$ext") -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -sha256 \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=cloudserver-lab-local-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
  die "openssl could not make the CA"
sign apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" ||
  die "openssl could not make the serving certificate"
sign admin "/O=system:masters/CN=admin" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth" ||
  die "openssl could not make the admin client certificate"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/sa.key" 2>/dev/null ||
  die "openssl could not make the service-account key"
openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null ||
  die "openssl could not write the service-account public key"
chmod 600 "$pki"/*.key
t_certs=$(now_ms)

# ---------------------------------------------------------------- start
# Ports are drawn afresh for each attempt; if another process grabs one
# between our check and the bind, the plane is started again on new ones.

write_args() {
  local etcd_port=$1 peer_port=$2 api_port=$3
  printf '%s\n' \
    --name=local \
    "--data-dir=$CSL_CLUSTER_DIR/etcd" \
    "--listen-client-urls=http://127.0.0.1:$etcd_port" \
    "--advertise-client-urls=http://127.0.0.1:$etcd_port" \
    "--listen-peer-urls=http://127.0.0.1:$peer_port" \
    "--initial-advertise-peer-urls=http://127.0.0.1:$peer_port" \
    "--initial-cluster=local=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync \
    --log-level=warn \
    >"$CSL_CLUSTER_DIR/etcd.args"
  printf '%s\n' \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    "--secure-port=$api_port" \
    "--cert-dir=$pki" \
    "--tls-cert-file=$pki/apiserver.crt" \
    "--tls-private-key-file=$pki/apiserver.key" \
    "--client-ca-file=$pki/ca.crt" \
    --authorization-mode=RBAC \
    "--etcd-servers=http://127.0.0.1:$etcd_port" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    "--service-account-key-file=$pki/sa.pub" \
    "--service-account-signing-key-file=$pki/sa.key" \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true \
    --profiling=false \
    --v=0 \
    >"$CSL_CLUSTER_DIR/kube-apiserver.args"
  # Extra flags for measurements, e.g. "--profiling=true --contention-profiling=true"
  # (a later flag wins); split on spaces.
  if [[ -n ${CSL_APISERVER_EXTRA_ARGS:-} ]]; then
    local -a extra
    read -ra extra <<<"$CSL_APISERVER_EXTRA_ARGS"
    printf '%s\n' "${extra[@]}" >>"$CSL_CLUSTER_DIR/kube-apiserver.args"
  fi
  echo "$etcd_port" >"$CSL_CLUSTER_DIR/etcd.port"
  echo "$api_port" >"$CSL_CLUSTER_DIR/apiserver.port"
}

start_etcd() {
  local -a args
  mapfile -t args <"$CSL_CLUSTER_DIR/etcd.args"
  setsid "$ETCD_BIN" "${args[@]}" </dev/null >>"$CSL_CLUSTER_DIR/etcd.log" 2>&1 8>&- 9>&- &
  record_pid etcd $!
}

attempt=1
while :; do
  etcd_port=$(free_port)
  peer_port=$(free_port)
  api_port=$(free_port)
  if [[ $etcd_port == "$peer_port" || $etcd_port == "$api_port" || $peer_port == "$api_port" ]]; then
    continue
  fi
  write_args "$etcd_port" "$peer_port" "$api_port"
  rm -rf "$CSL_CLUSTER_DIR/etcd"
  : >"$CSL_CLUSTER_DIR/etcd.log"
  : >"$CSL_CLUSTER_DIR/kube-apiserver.log"
  log "starting etcd on 127.0.0.1:$etcd_port and kube-apiserver $KUBE_VERSION on https://127.0.0.1:$api_port"
  start_etcd
  start_apiserver
  status=0
  wait_ready "$timeout_s" || status=$?
  ((status == 0)) && break
  stop_recorded kube-apiserver
  stop_recorded etcd
  if ((status == 1 && attempt < 3)) &&
    grep -qi 'address already in use' "$CSL_CLUSTER_DIR/etcd.log" "$CSL_CLUSTER_DIR/kube-apiserver.log"; then
    log "a port was taken while starting; trying other ports"
    attempt=$((attempt + 1))
    continue
  fi
  for name in etcd kube-apiserver; do
    echo "---- last lines of $CSL_CLUSTER_DIR/$name.log" >&2
    tail -n 20 "$CSL_CLUSTER_DIR/$name.log" >&2 || true
  done
  if ((status == 1)); then
    die "the control plane exited during start-up (logs above, in full in $CSL_CLUSTER_DIR)"
  fi
  die "kube-apiserver was not ready after $timeout_s s (logs above, in full in $CSL_CLUSTER_DIR); a loaded machine may need CSL_CLUSTER_TIMEOUT=300"
done
t_ready=$(now_ms)

# The API server creates the default namespace just after it turns ready;
# wait for it so `kubectl apply` to the default namespace works at once.
for ((i = 0; i < 100; i++)); do
  apiserver_get /api/v1/namespaces/default >/dev/null && break
  sleep 0.1
done

# ---------------------------------------------------------------- kubeconfig
# Credentials are embedded so the file still works when copied elsewhere.
tmp=$kubeconfig.tmp
cat >"$tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: cloudserver-lab-local
    cluster:
      server: https://127.0.0.1:$api_port
      certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
  - name: admin
    user:
      client-certificate-data: $(base64 -w0 <"$pki/admin.crt")
      client-key-data: $(base64 -w0 <"$pki/admin.key")
contexts:
  - name: cloudserver-lab-local
    context:
      cluster: cloudserver-lab-local
      user: admin
current-context: cloudserver-lab-local
KUBECONFIG
chmod 600 "$tmp"
mv -f "$tmp" "$kubeconfig"

log "ready in $(((t_ready - t_start) / 1000)).$((((t_ready - t_start) % 1000) / 100)) s" \
  "(binaries $((t_built - t_start)) ms, certificates $((t_certs - t_built)) ms, start to /readyz $((t_ready - t_certs)) ms)"
log "kubeconfig: $kubeconfig   try: kubectl --kubeconfig $kubeconfig get ns"
