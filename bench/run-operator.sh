#!/usr/bin/env bash
# The operator at scale, on a local control plane of its own
# (scripts/with-local-plane.sh starts and stops it): CRDs applied, the
# credentials Secret created, mockcloud started with every lifecycle
# transition at 0 s, the operator started on one namespace, then
# bench/operator_scale creates N CloudServers, waits for all Ready, and
# reports wall time, API writes per object against a bare client's floor,
# the operator's RSS and its idle CPU. Everything it starts is stopped by
# PID in a trap. Figures, not gates: exits 0 unless the benchmark broke.
#
# Env: CSL_BIN_DIR (mockcloud, cloudserver-operator), CSL_BENCH_DIR
# (operator_scale), BENCH_OPERATOR_N (objects, 1000), BENCH_THREADS_CREATE
# (client threads, 8), BENCH_IDLE_S (idle CPU window, 60),
# BENCH_OPERATOR_WORKERS (--max-concurrent-reconciles, the operator's
# default when unset), BENCH_TIMEOUT_S (wait for Ready, 900),
# BENCH_ROUNDS (1: how many times the whole measurement is repeated on the
# same plane, each round with an operator of its own on fresh namespaces;
# with more than one the medians of the ratios end the output: one run's
# ratio moves by +-0.3 with the machine's mood), BENCH_METRICS_OUT (a file:
# the operator's /metrics after the last round).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bin_dir=${CSL_BIN_DIR:-$repo/bin}
bench_dir=${CSL_BENCH_DIR:-$repo/build/default/bench}

if [[ -z ${CSL_KUBECONFIG:-} ]]; then
  exec "$repo/scripts/with-local-plane.sh" "$0" "$@"
fi

die() {
  echo "run-operator: $*" >&2
  exit 1
}
for b in "$bin_dir/mockcloud" "$bin_dir/cloudserver-operator" "$bench_dir/operator_scale"; do
  [[ -x $b ]] || die "$b is missing (build it; CSL_BIN_DIR / CSL_BENCH_DIR say where)"
done

n=${BENCH_OPERATOR_N:-1000}
token=bench-operator-token
ns=bench-op
floor_ns=bench-floor
sys_ns=bench-op-system
tmp=$(mktemp -d "${TMPDIR:-/tmp}/csl-bench-op.XXXXXX")
mc_pid=
op_pid=
cleanup() {
  for p in $op_pid $mc_pid; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in $op_pid $mc_pid; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for a file written atomically by pid; prints its content.
wait_file() {
  local f=$1 pid=$2 log=$3
  for _ in $(seq 600); do
    if [[ -s $f ]]; then
      cat "$f"
      return
    fi
    kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; die "pid $pid exited while starting"; }
    sleep 0.1
  done
  tail -20 "$log" >&2
  die "$f not written within 60 s"
}

k() { kubectl --kubeconfig "$CSL_KUBECONFIG" "$@"; }
k apply --server-side -f "$repo/config/crd/bases" >/dev/null
k wait --for condition=established --timeout=60s crd/cloudservers.cloudserver.dev >/dev/null
k create namespace "$sys_ns" >/dev/null
k -n "$sys_ns" create secret generic cloud-credentials --from-literal=token="$token" >/dev/null

cat >"$tmp/mockcloud.yaml" <<'EOF'
cloud:
  timings: {create: 0ms, resize: 0ms, stop: 0ms, start: 0ms, reboot: 0ms, delete: 0ms, snapshot: 0ms}
EOF
"$bin_dir/mockcloud" --listen 127.0.0.1:0 --port-file "$tmp/mc.port" --token "$token" \
  --config "$tmp/mockcloud.yaml" --seed 1 --log-level warn 2>"$tmp/mockcloud.log" &
mc_pid=$!
mc_port=$(wait_file "$tmp/mc.port" "$mc_pid" "$tmp/mockcloud.log")

workers=()
[[ -n ${BENCH_OPERATOR_WORKERS:-} ]] && workers=(--max-concurrent-reconciles "$BENCH_OPERATOR_WORKERS")
rounds=${BENCH_ROUNDS:-1}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer, not '$rounds'"

# One round: an operator of its own on namespace $1, operator_scale with
# floors in $2*. Sets rc; operator_scale's output is also appended to
# $tmp/out, whose RESULT lines the medians are taken from.
round() {
  local ns=$1 floor_ns=$2
  rm -f "$tmp/operator.ready"
  "$bin_dir/cloudserver-operator" --kubeconfig "$CSL_KUBECONFIG" --namespace "$ns" \
    --cloud-endpoint "http://127.0.0.1:$mc_port" --cloud-credentials-secret "$sys_ns/cloud-credentials" \
    --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 \
    --ready-file "$tmp/operator.ready" --log-level warn "${workers[@]}" 2>"$tmp/operator.log" &
  op_pid=$!
  wait_file "$tmp/operator.ready" "$op_pid" "$tmp/operator.log" >/dev/null

  echo "== Operator: $n CloudServers to Ready, writes against the floor, RSS, idle CPU"
  set +e
  "$bench_dir/operator_scale" --kubeconfig "$CSL_KUBECONFIG" --namespace "$ns" \
    --floor-namespace "$floor_ns" --operator-pid "$op_pid" --ready-file "$tmp/operator.ready" \
    --count "$n" --threads "${BENCH_THREADS_CREATE:-8}" --idle-s "${BENCH_IDLE_S:-60}" \
    --timeout-s "${BENCH_TIMEOUT_S:-900}" | tee -a "$tmp/out"
  rc=${PIPESTATUS[0]}
  set -e
  echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  if [[ -n ${BENCH_METRICS_OUT:-} ]]; then
    # The operator's /metrics after the run (request latencies by verb and op).
    local addr
    addr=$(sed -n 's/.*"metrics" *: *"\([^"]*\)".*/\1/p' "$tmp/operator.ready")
    curl -fsS "http://${addr/#:/127.0.0.1:}/metrics" >"$BENCH_METRICS_OUT" || true
  fi
  if ((rc != 0)); then
    echo "run-operator: operator_scale failed; the operator's stderr (tail):" >&2
    tail -30 "$tmp/operator.log" >&2
  fi
  kill -0 "$op_pid" 2>/dev/null || die "the operator died during the run"
  kill -TERM "$op_pid"
  wait "$op_pid" 2>/dev/null || true
  op_pid=
}

rc=0
for ((r = 1; r <= rounds; r++)); do
  if ((rounds == 1)); then
    round "$ns" "$floor_ns"
  else
    echo "== round $r of $rounds"
    round "$ns-$r" "$floor_ns-$r"
  fi
  ((rc == 0)) || exit "$rc"
done

if ((rounds > 1)); then
  # Medians over the rounds of the three wall-time ratios.
  awk -v rounds="$rounds" '
    /^RESULT / {
      for (i = 2; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "wall_ratio") a[++na] = kv[2]
        if (kv[1] == "watched_wall_ratio") b[++nb] = kv[2]
        if (kv[1] == "pipelined_wall_ratio") c[++nc] = kv[2]
      }
    }
    function median(v, n,    i, j, t) {
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function list(v, n,    i, s) { s = v[1]; for (i = 2; i <= n; i++) s = s " " v[i]; return s }
    END {
      if (na != rounds) { print "run-operator: " na " results for " rounds " rounds" > "/dev/stderr"; exit 1 }
      printf "== %d rounds: wall time / floor %s; / watched floor %s; / pipelined floor %s\n", rounds, list(a, na), list(b, nb), list(c, nc)
      ma = median(a, na); mb = median(b, nb); mc = median(c, nc)
      printf "MEDIAN rounds=%d wall_ratio=%.2f watched_wall_ratio=%.2f pipelined_wall_ratio=%.2f\n", rounds, ma, mb, mc
      printf "%s: median wall time <= 1.3x the floor'"'"'s over %d rounds (%.2fx; %.2fx against the watched floor, %.2fx against the pipelined floor)\n", (ma <= 1.3 ? "PASS" : "FAIL"), rounds, ma, mb, mc
    }' "$tmp/out"
fi

