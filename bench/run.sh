#!/usr/bin/env bash
# run.sh — mockcloud's benchmarks (what `make bench` runs).
#
# 1. Throughput and latency of GET /v1/instances/{id} with keep-alive (wrk),
#    against mockcloud with no fault rules, with 100 rules that don't match,
#    and against bench/ceiling: a bare libmicrohttpd server, same daemon
#    flags, answering every request with the very bytes mockcloud sent. The
#    three alternate, twice, so a burst of load from elsewhere on the box
#    hits one round rather than one server; each figure is the better round.
# 2. 10,000 requests at once under a fixed 1 s latency rule (bench/concurrent):
#    wall time, failures, and mockcloud's peak RSS.
#
# Figures, not gates: it exits 0 whatever the figures (each target gets a
# PASS/FAIL line) and non-zero only when the benchmark itself broke.
#
# Env: CSL_BIN_DIR (mockcloud), CSL_BENCH_DIR (ceiling, concurrent);
# BENCH_DURATION (wrk seconds, 10), BENCH_CONNECTIONS (32), BENCH_THREADS
# (wrk threads, 2), BENCH_ROUNDS (2), BENCH_RULES (100), BENCH_N (10000),
# BENCH_BATCH / BENCH_GAP_US (connects opened between two looks at what is
# ready, 64, and a pause between such batches, 0 us), BENCH_CONN_MEMORY
# (mockcloud's --conn-memory, its default 16384; 4096 is the setting for
# 10,000 connections in 64 MiB).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin_dir=${CSL_BIN_DIR:-$here/../bin}
bench_dir=${CSL_BENCH_DIR:-$here/../build/default/bench}
duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNECTIONS:-32}
wrk_threads=${BENCH_THREADS:-2}
rounds=${BENCH_ROUNDS:-2}
nrules=${BENCH_RULES:-100}
n=${BENCH_N:-10000}
conn_memory=${BENCH_CONN_MEMORY:-16384}
batch=${BENCH_BATCH:-64}
gap_us=${BENCH_GAP_US:-0}
token=bench-token
server_threads=2

die() { echo "bench: $*" >&2; exit 1; }

for f in "$bin_dir/mockcloud" "$bench_dir/ceiling" "$bench_dir/concurrent"; do
  [[ -x $f ]] || die "$f not found; build it first (make bench builds everything)"
done
command -v wrk >/dev/null || die "wrk not installed (scripts/deps.sh installs it)"
command -v curl >/dev/null || die "curl not installed (scripts/deps.sh installs it)"

# N client sockets in one process and N server connections in another: each
# process needs N fds and some. The hard limit caps what we may ask for.
hard=$(ulimit -Hn)
want=$((n + 2048))
if [[ $hard != unlimited && $hard -lt $want ]]; then
  echo "bench: fd hard limit $hard is below $want; the concurrency run is capped at $((hard - 2048))" >&2
  n=$((hard - 2048))
  want=$hard
fi
ulimit -n "$want"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/csl-bench.XXXXXX")
mc_pid='' ceil_pid=''
cleanup() {
  local pid
  for pid in $mc_pid $ceil_pid; do
    if kill "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# waits for a --port-file to appear; fails when the process dies first.
wait_port() {
  local file=$1 pid=$2 log=$3 i
  for ((i = 0; i < 100; i++)); do
    [[ -s $file ]] && { cat "$file"; return 0; }
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "server exited at start (log above)"; }
    sleep 0.1
  done
  die "server did not write $file within 10 s"
}

auth=(-H "Authorization: Bearer $token")
mcurl() { curl -sS --max-time 10 "${auth[@]}" "$@"; }

# ------------------------------------------------------------ mockcloud up

# Lifecycle timings are cut short so the instance is running at once.
cat >"$tmp/config.yaml" <<'EOF'
cloud:
  timings: {create: 20ms, resize: 20ms, stop: 20ms, start: 20ms, reboot: 20ms, delete: 20ms, snapshot: 20ms}
EOF

# libmicrohttpd splits the connection limit evenly over its polling threads,
# and a burst is not accepted evenly, so leave each thread room for all N.
maxconn=$((n * server_threads > 16384 ? n * server_threads : 16384))
"$bin_dir/mockcloud" --listen 127.0.0.1:0 --port-file "$tmp/mc.port" --token "$token" \
  --config "$tmp/config.yaml" --seed 1 --threads "$server_threads" \
  --max-connections "$maxconn" --conn-memory "$conn_memory" --log-level warn 2>"$tmp/mockcloud.log" &
mc_pid=$!
mc_port=$(wait_port "$tmp/mc.port" "$mc_pid" "$tmp/mockcloud.log")
mc="http://127.0.0.1:$mc_port"

created=$(mcurl -X POST -H 'Content-Type: application/json' "$mc/v1/instances" \
  -d '{"name":"bench","cpu":2,"memoryMiB":4096,"diskGiB":40,"image":"debian-12","zone":"hk-1a"}') ||
  die "create instance failed"
id=$(grep -o '"id":"[^"]*"' <<<"$created" | head -1 | cut -d'"' -f4)
[[ -n $id ]] || die "create instance answered without an id: $created"
for ((i = 0; ; i++)); do
  state=$(mcurl "$mc/v1/instances/$id" | grep -o '"state":"[^"]*"' | cut -d'"' -f4) || true
  [[ $state == running ]] && break
  ((i < 100)) || die "instance $id not running after 10 s (state: ${state:-?})"
  sleep 0.1
done
path=/v1/instances/$id
mcurl -i "$mc$path" >"$tmp/reply.http"
grep -q '^HTTP/1.1 200' "$tmp/reply.http" || die "GET $path: $(head -1 "$tmp/reply.http")"

# ------------------------------------------------------------ the ceiling

"$bench_dir/ceiling" --reply "$tmp/reply.http" --listen 127.0.0.1:0 --port-file "$tmp/ceil.port" \
  --threads "$server_threads" --max-connections "$maxconn" 2>"$tmp/ceiling.log" &
ceil_pid=$!
ceil_port=$(wait_port "$tmp/ceil.port" "$ceil_pid" "$tmp/ceiling.log")
ceil="http://127.0.0.1:$ceil_port"

# Same bytes? The Date header aside, status, headers and body must agree.
mcurl -i "$ceil$path" >"$tmp/ceil.http"
if ! diff <(grep -av '^Date:' "$tmp/reply.http") <(grep -av '^Date:' "$tmp/ceil.http") >"$tmp/diff"; then
  echo "bench: warning: the ceiling's reply differs from mockcloud's:" >&2
  cat "$tmp/diff" >&2
fi

# ------------------------------------------------------------ wrk

# CPU time (user + system) a process has used, in microseconds.
cpu_us() {
  local tck
  tck=$(getconf CLK_TCK)
  # Fields after the "(comm)" one: state is 3rd, utime 14th, stime 15th.
  sed 's/.*) //' "/proc/$1/stat" | awk -v t="$tck" '{ printf "%.0f\n", ($12 + $13) * 1000000 / t }'
}

# How much of the machine other processes used while we measured: all busy
# CPU time (/proc/stat) less ours (this shell and the children it waited for,
# mockcloud, the ceiling). On a shared box this says how far to trust a run.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
own_ticks() {
  local pid t=0
  for pid in $$ $mc_pid $ceil_pid; do
    # utime, stime, cutime, cstime: fields 14-17, after "(comm)" 12-15.
    t=$((t + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 + $14 + $15 }')))
  done
  echo "$t"
}
others_start() { others0=("$(busy_ticks)" "$(own_ticks)" "$(date +%s%N)"); }
others_report() {
  local busy own ns
  busy=$(busy_ticks) own=$(own_ticks) ns=$(date +%s%N)
  awk -v b=$((busy - others0[0])) -v o=$((own - others0[1])) -v ns=$((ns - others0[2])) \
    -v hz="$(getconf CLK_TCK)" -v c="$(nproc)" 'BEGIN {
      pct = (b - o) / hz / (ns / 1e9) / c * 100; if (pct < 0) pct = 0
      printf "other processes used %.0f%% of the %d cores during these runs%s\n", pct, c,
        (pct > 10 ? " — the figures are disturbed; rerun on a quiet machine" : "")
    }'
}

# p50 and p99 in us of mockcloud's own view of the newest 2,000 GETs: the
# journal's latency, from the request's arrival until mockcloud records it,
# just before the reply is serialised and sent. It covers the fault engine
# and leaves out wrk, the kernel and the scheduling of two busy cores.
server_latency() {
  mcurl "$mc/_mock/journal?op=GetInstance&limit=2000" | grep -o '"latencyMs":[0-9.e+-]*' |
    cut -d: -f2 | sort -g |
    awk '{ v[NR] = $1 } END { if (NR) printf "%.0f %.0f\n", v[int(NR * 0.5) + 1] * 1000, v[int(NR * 0.99) + 1] * 1000; else print "0 0" }'
}

# Runs wrk against the server with pid $2; appends "label rps p50_us p99_us
# cpu_us_per_request server_p50_us server_p99_us problems" to $tmp/results.
# The server's CPU time per request is what other load disturbs least.
run_wrk() {
  local label=$1 pid=$2 url=$3 c=$4 t=$5 d=$6 out cpu0 cpu1 srv="0 0"
  cpu0=$(cpu_us "$pid")
  out=$(wrk -t"$t" -c"$c" -d"${d}s" --latency "${auth[@]}" "$url") || die "wrk failed on $label: $out"
  cpu1=$(cpu_us "$pid")
  [[ $pid == "$mc_pid" ]] && srv=$(server_latency)
  awk -v label="$label" -v cpu=$((cpu1 - cpu0)) -v srv="$srv" '
    function us(v) {
      if (v ~ /us$/) return v + 0
      if (v ~ /ms$/) return v * 1000
      if (v ~ /s$/) return v * 1000000
      return v
    }
    /^ +50% / { p50 = us($2) }
    /^ +99% / { p99 = us($2) }
    / requests in / { n = $1 }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { bad = bad "non2xx=" $NF ";" }
    /Socket errors:/ { sub(/.*Socket errors: /, ""); gsub(/, /, ","); gsub(/ /, "="); bad = bad $0 ";" }
    END { printf "%s %.0f %.0f %.0f %.2f %s %s\n", label, rps, p50, p99, n ? cpu / n : 0, srv, bad == "" ? "-" : bad }
  ' <<<"$out" | tee -a "$tmp/results" |
    awk '{ printf "  %-22s %7s req/s  p50 %5s  p99 %5s us  server p50 %3s  p99 %4s us  cpu %5s us/req  %s\n",
      $1, $2, $3, $4, $6, $7, $5, ($8 == "-" ? "" : $8) }'
}

rules_json() {
  local i sep=''
  printf '{"rules":['
  for ((i = 1; i <= nrules; i++)); do
    printf '%s{"id":"bench-miss-%d","match":{"method":"GET","path":"/v1/nothing-%d"},' "$sep" "$i" "$i"
    printf '"effect":{"type":"error","status":500,"code":"BenchMiss","message":"never fires"}}'
    sep=,
  done
  printf ']}'
}
rules_json >"$tmp/rules.json"
add_rules() {
  local code
  code=$(mcurl -o "$tmp/rules.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary @"$tmp/rules.json" "$mc/_mock/faults") || die "POST /_mock/faults failed"
  [[ $code == 201 ]] || die "POST /_mock/faults answered $code: $(cat "$tmp/rules.out")"
}
clear_rules() {
  local code
  code=$(mcurl -o /dev/null -w '%{http_code}' -X DELETE "$mc/_mock/faults") || die "DELETE /_mock/faults failed"
  [[ $code == 204 ]] || die "DELETE /_mock/faults answered $code"
}

echo "mockcloud benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(uname -r)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)   (wrk runs on the same cores as the server)"
echo "GET $path: $(wc -c <"$tmp/reply.http") bytes on the wire (headers + body) as mockcloud sends them"
echo
echo "wrk -t$wrk_threads -c$conns -d${duration}s, keep-alive; $rounds rounds, alternating:"
others_start
# A short warm-up so neither server pays for first-touch page faults.
wrk -t1 -c4 -d1s "${auth[@]}" "$ceil$path" >/dev/null
wrk -t1 -c4 -d1s "${auth[@]}" "$mc$path" >/dev/null
for ((r = 1; r <= rounds; r++)); do
  run_wrk ceiling "$ceil_pid" "$ceil$path" "$conns" "$wrk_threads" "$duration"
  run_wrk mockcloud "$mc_pid" "$mc$path" "$conns" "$wrk_threads" "$duration"
  add_rules
  run_wrk "mockcloud+${nrules}rules" "$mc_pid" "$mc$path" "$conns" "$wrk_threads" "$duration"
  clear_rules
done
# One connection: no queueing, so p99 is close to the cost of one request and
# the rules' cost is not multiplied by the requests waiting behind it.
c1_duration=$((duration > 1 ? duration / 2 : 1))
echo "wrk -t1 -c1 -d${c1_duration}s (one request at a time):"
for ((r = 1; r <= rounds; r++)); do
  run_wrk c1:mockcloud "$mc_pid" "$mc$path" 1 1 "$c1_duration"
  add_rules
  run_wrk "c1:mockcloud+${nrules}rules" "$mc_pid" "$mc$path" 1 1 "$c1_duration"
  clear_rules
done

# Best of the rounds, per figure: highest req/s, lowest everything else.
best() {
  awk -v l="$1" -v f="$2" '$1 == l { v = $f + 0; if (!seen || (f == 2 ? v > b : v < b)) b = v; seen = 1 }
    END { print (f == 5 ? b + 0 : int(b + 0.5)) }' "$tmp/results"
}
problems=$(awk '$8 != "-" { print $1 ": " $8 }' "$tmp/results")

echo
others_report
echo
printf '%-26s %8s %7s %7s %11s %11s %11s\n' "best of $rounds" "req/s" "p50 us" "p99 us" \
  "server p50" "server p99" "cpu us/req"
# The ceiling keeps no journal.
best_srv() { if [[ $1 == ceiling ]]; then echo -; else best "$1" "$2"; fi; }
for l in ceiling mockcloud "mockcloud+${nrules}rules" c1:mockcloud "c1:mockcloud+${nrules}rules"; do
  printf '%-26s %8s %7s %7s %11s %11s %11s\n' "$l" "$(best "$l" 2)" "$(best "$l" 3)" "$(best "$l" 4)" \
    "$(best_srv "$l" 6)" "$(best_srv "$l" 7)" "$(best "$l" 5)"
done
echo
verdict() { if [[ $1 == 1 ]]; then echo PASS; else echo FAIL; fi; }
ratio=$(awk -v a="$(best mockcloud 2)" -v b="$(best ceiling 2)" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
cpu_ratio=$(awk -v a="$(best mockcloud 5)" -v b="$(best ceiling 5)" 'BEGIN { printf "%.2f", a ? b / a : 0 }')
rules="mockcloud+${nrules}rules"
d32=$(($(best "$rules" 4) - $(best mockcloud 4)))
d1=$(($(best "c1:$rules" 4) - $(best c1:mockcloud 4)))
s32=$(($(best "$rules" 7) - $(best mockcloud 7)))
s1=$(($(best "c1:$rules" 7) - $(best c1:mockcloud 7)))
dcpu=$(awk -v a="$(best "$rules" 5)" -v b="$(best mockcloud 5)" 'BEGIN { printf "%.1f", a - b }')
printf 'target  %-48s %-26s %s\n' \
  "mockcloud >= 0.8 x ceiling (req/s)" "$ratio x" "$(verdict "$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) }')")" \
  "  the same by server CPU per request" "$cpu_ratio x" "$(verdict "$(awk -v r="$cpu_ratio" 'BEGIN { print (r >= 0.8) }')")" \
  "${nrules} rules add <= 50 us at p99, wrk -c$conns" "$d32 us" "$(verdict $((d32 <= 50)))" \
  "  wrk -c1" "$d1 us" "$(verdict $((d1 <= 50)))" \
  "  server side (journal), -c$conns" "$s32 us" "$(verdict $((s32 <= 50)))" \
  "  server side (journal), -c1" "$s1 us" "$(verdict $((s1 <= 50)))" \
  "  server CPU the rules add per request, -c$conns" "$dcpu us" ""
[[ -z $problems ]] || { echo "errors reported by wrk (figures above are suspect):"; echo "$problems"; }

# ------------------------------------------------------------ concurrency

echo
kill "$ceil_pid"
wait "$ceil_pid" 2>/dev/null || true
ceil_pid=''
code=$(mcurl -o "$tmp/lat.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$mc/_mock/faults" \
  -d '{"id":"bench-latency","match":{"method":"GET","op":"GetInstance"},"effect":{"type":"latency","latency":"1s"}}') ||
  die "POST /_mock/faults (latency rule) failed"
[[ $code == 201 ]] || die "POST /_mock/faults (latency rule) answered $code: $(cat "$tmp/lat.out")"
echo "$n concurrent GET $path under a fixed 1 s latency rule (--conn-memory $conn_memory, fd limit $(ulimit -n), listen backlog" \
  "capped by net.core.somaxconn=$(cat /proc/sys/net/core/somaxconn)):"
# The memory target is about this phase: note the peak so far, then restart
# the kernel's peak-RSS count (VmHWM) from the current RSS.
hwm_run=$(awk '/^VmHWM:/ { print $2 }' "/proc/$mc_pid/status")
echo 5 2>/dev/null >"/proc/$mc_pid/clear_refs" || echo "bench: cannot reset VmHWM; the peak covers the whole run" >&2
others_start
"$bench_dir/concurrent" --connect "127.0.0.1:$mc_port" --path "$path" --token "$token" \
  --pid "$mc_pid" -n "$n" --timeout 30 --batch "$batch" --gap-us "$gap_us" | tee "$tmp/concurrent.out" || die "concurrent failed"
others_report
code=$(mcurl -o /dev/null -w '%{http_code}' -X DELETE "$mc/_mock/faults/bench-latency") || die "DELETE latency rule failed"
[[ $code == 204 ]] || die "DELETE /_mock/faults/bench-latency answered $code"

res=$(grep '^RESULT ' "$tmp/concurrent.out") || die "concurrent printed no RESULT line"
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$res"; }
wall=$(get wall_ms) failed=$(get failed) other=$(get other) hwm=$(get hwm_kib)
ok=$(awk -v w="$wall" -v f="$failed" -v o="$other" 'BEGIN { print (w <= 1500 && f == 0 && o == 0) }')
printf 'target  %-48s %-26s %s\n' "$n requests complete in <= 1.5 s" \
  "$wall ms, $failed failed, $other non-200" "$(verdict "$ok")"
ok=$(awk -v h="$hwm" 'BEGIN { print (h > 0 && h <= 65536) }')
printf 'target  %-48s %-26s %s\n' "mockcloud peak RSS <= 64 MiB (VmHWM)" \
  "$(awk -v h="$hwm" 'BEGIN { printf "%.1f", h / 1024 }') MiB" "$(verdict "$ok")"
echo "        (peak before the $n requests, wrk runs included: $(awk -v h="$hwm_run" 'BEGIN { printf "%.1f", h / 1024 }') MiB)"
kill -0 "$mc_pid" 2>/dev/null || die "mockcloud died during the benchmark; its log: $(tail -5 "$tmp/mockcloud.log")"
