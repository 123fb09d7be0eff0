# Shared settings for the local control plane scripts (sourced, not run).
#
# One idea: everything that costs minutes (Go module downloads, the compile
# cache, the two binaries) lives outside the clone under CSL_CACHE, keyed by
# version, so a fresh clone or `make clean` never pays for it again; everything
# that belongs to one running plane (certificates, etcd data, logs, PIDs,
# kubeconfig) lives in CSL_CLUSTER_DIR, which `cluster-down` may delete.

# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables below are used by the scripts that source this

LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LOCAL_DIR/../.." && pwd)

# shellcheck source=kind/local/versions.env
. "$LOCAL_DIR/versions.env"
KUBE_VERSION=${CSL_KUBE_VERSION:-$KUBE_VERSION}
ETCD_VERSION=${CSL_ETCD_VERSION:-$ETCD_VERSION}

CSL_CACHE=${CSL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudserver-lab}
KUBE_APISERVER_BIN=$CSL_CACHE/kube-apiserver/$KUBE_VERSION/kube-apiserver
ETCD_BIN=$CSL_CACHE/etcd/$ETCD_VERSION/etcd

CSL_CLUSTER_DIR=${CSL_CLUSTER_DIR:-$REPO_DIR/.cluster}

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

log() { printf 'local-plane: %s\n' "$*" >&2; }
die() { printf 'local-plane: error: %s\n' "$*" >&2; exit 1; }

# Seconds since the epoch with millisecond precision, for timings.
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- processes

# proc_start_time PID: the process's start time in clock ticks since boot
# (field 22 of /proc/PID/stat), or nothing if there is no such process.
# Recorded with each PID so a stop never hits a recycled PID.
proc_start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }            # drop "pid (comm) ", comm may hold spaces
  # shellcheck disable=SC2086  # split the remaining fields on purpose
  set -- $stat
  echo "${20}"
}

# proc_alive PID: true while PID runs (a zombie counts as gone).
proc_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# recorded_pid NAME: the PID in $CSL_CLUSTER_DIR/NAME.pid if that process is
# still the one we started (same start time), else nothing.
recorded_pid() {
  local f=$CSL_CLUSTER_DIR/$1.pid pid start
  [[ -f $f ]] || return 0
  read -r pid start <"$f" || true
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  proc_alive "$pid" || return 0
  [[ $(proc_start_time "$pid") == "$start" ]] || return 0
  echo "$pid"
}

# record_pid NAME PID: remember PID (and its start time) as NAME.
record_pid() {
  echo "$2 $(proc_start_time "$2")" >"$CSL_CLUSTER_DIR/$1.pid"
}

# stop_recorded NAME [GRACE_SECONDS]: SIGTERM the recorded process, wait for
# it to exit, SIGKILL it after the grace period, then forget it.
stop_recorded() {
  local name=$1 grace=${2:-15} pid i
  pid=$(recorded_pid "$name")
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      proc_alive "$pid" || break
      sleep 0.1
    done
    if proc_alive "$pid"; then
      log "$name (pid $pid) ignored SIGTERM for ${grace}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        proc_alive "$pid" || break
        sleep 0.1
      done
      proc_alive "$pid" && die "$name (pid $pid) survived SIGKILL"
    fi
  fi
  rm -f "$CSL_CLUSTER_DIR/$name.pid"
}

# ---------------------------------------------------------------- ports

# port_in_use PORT: true if anything listens on 127.0.0.1:PORT or the
# wildcard address.
port_in_use() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port: a TCP port nobody listens on, drawn at random below the
# kernel's ephemeral range so an outgoing connection cannot be holding it.
# Another process may still take it before we bind; the callers retry.
free_port() {
  local lo=20000 hi=32767 eph port i
  read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || eph=32768
  ((eph > lo + 1000)) && hi=$((eph - 1))
  for ((i = 0; i < 200; i++)); do
    port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    port_in_use "$port" || { echo "$port"; return 0; }
  done
  die "found no free TCP port in $lo-$hi after 200 tries"
}

# ---------------------------------------------------------------- API server

# apiserver_get PATH: GET PATH from the recorded API server as admin; prints
# the body, fails unless the answer is 200.
apiserver_get() {
  local port
  port=$(cat "$CSL_CLUSTER_DIR/apiserver.port" 2>/dev/null) || return 1
  curl -fsS --max-time 2 --cacert "$CSL_CLUSTER_DIR/pki/ca.crt" \
    --cert "$CSL_CLUSTER_DIR/pki/admin.crt" --key "$CSL_CLUSTER_DIR/pki/admin.key" \
    "https://127.0.0.1:$port$1" 2>/dev/null
}

# start_apiserver: start kube-apiserver with the flags in kube-apiserver.args
# (written by up.sh), in its own session so the shell that started it may
# exit, and record its PID.
start_apiserver() {
  local -a args
  mapfile -t args <"$CSL_CLUSTER_DIR/kube-apiserver.args"
  setsid "$KUBE_APISERVER_BIN" "${args[@]}" </dev/null >>"$CSL_CLUSTER_DIR/kube-apiserver.log" 2>&1 8>&- 9>&- &
  record_pid kube-apiserver $!
}

# wait_ready TIMEOUT_SECONDS: wait until /readyz answers ok. Returns 0 when
# ready, 1 as soon as a recorded process has died, 2 on timeout.
wait_ready() {
  local deadline=$(($(now_ms) + $1 * 1000)) name
  while (($(now_ms) < deadline)); do
    for name in etcd kube-apiserver; do
      [[ -n $(recorded_pid "$name") ]] || return 1
    done
    [[ $(apiserver_get /readyz) == ok ]] && return 0
    sleep 0.1
  done
  return 2
}
