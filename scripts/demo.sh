#!/usr/bin/env bash
# demo.sh — a guided tour of mockcloud, the project's main job until the
# scenario runner lands (`make scenarios` runs it after `make` built bin/).
#
# Starts bin/mockcloud on a free loopback port, then drives it with curl:
# an instance's lifecycle (pending → running → resizing → running), a
# latency rule, a 503 rule that fires twice, a chaos crash, the request
# journal, /metrics, and deletion. Stops mockcloud by its PID, whatever
# happens. Needs only bash, curl, grep and sed.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN_DIR=${CSL_BIN_DIR:-bin}
MOCKCLOUD=$BIN_DIR/mockcloud
TOKEN=demo-token

if [[ ! -x $MOCKCLOUD ]]; then
  echo "demo: $MOCKCLOUD not found; run 'make' first" >&2
  exit 1
fi
command -v curl >/dev/null || { echo "demo: curl is needed (scripts/deps.sh installs it)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mockcloud-demo.XXXXXX")
pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers

bold= plain=
if [[ -t 1 ]]; then
  bold=$(tput bold 2>/dev/null || true)
  plain=$(tput sgr0 2>/dev/null || true)
fi
step=0
heading() {
  step=$((step + 1))
  printf '\n%s== %d. %s%s\n' "$bold" "$step" "$*" "$plain"
}
note() { printf '   %s\n' "$*"; }

# call METHOD PATH [BODY]: prints the request, the status and the body; the
# body is left in $work/body and the status in $status.
status=
call() {
  local method=$1 path=$2 body=${3:-}
  local args=(-sS -o "$work/body" -w '%{http_code} %{time_total}' -X "$method"
    -H "Authorization: Bearer $TOKEN")
  [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data "$body")
  printf '   > %s %s %s\n' "$method" "$path" "$body"
  local out
  out=$(curl "${args[@]}" "$base$path") || { echo "   ! curl failed" >&2; return 1; }
  status=${out%% *}
  if [[ -n ${QUIET:-} ]]; then
    printf '   < %s (%.3fs), %s bytes\n' "$status" "${out##* }" "$(wc -c <"$work/body")"
  else
    printf '   < %s (%.3fs) %s\n' "$status" "${out##* }" "$(head -c 600 "$work/body")"
  fi
}

# field NAME: the first "NAME":"value" string in the last body.
field() { grep -o "\"$1\":\"[^\"]*\"" "$work/body" | head -1 | cut -d'"' -f4; }

# wait_state ID STATE: polls the instance until it reaches STATE (≤ 20 s).
wait_state() {
  local id=$1 want=$2 state= i
  for ((i = 0; i < 100; i++)); do
    curl -sS -o "$work/body" -H "Authorization: Bearer $TOKEN" "$base/v1/instances/$id"
    state=$(field state)
    [[ $state == "$want" ]] && { note "instance $id is $state after $((i * 200)) ms of polling"; return 0; }
    [[ $i -eq 0 || $((i % 5)) -eq 0 ]] && note "… $state"
    sleep 0.2
  done
  echo "demo: $id did not reach $want (last: $state)" >&2
  return 1
}

# ---------------------------------------------------------------- start

heading "Start mockcloud on a free loopback port"
"$MOCKCLOUD" --listen 127.0.0.1:0 --port-file "$work/port" --seed 42 --token "$TOKEN" \
  --state-file "$work/state.json" 2>"$work/mockcloud.log" &
pid=$!
for ((i = 0; i < 100; i++)); do
  [[ -s $work/port ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/mockcloud.log" >&2; echo "demo: mockcloud exited" >&2; exit 1; }
  sleep 0.1
done
[[ -s $work/port ]] || { echo "demo: mockcloud did not start in 10 s" >&2; exit 1; }
base=http://127.0.0.1:$(cat "$work/port")
note "pid $pid, $base, seed 42, one read-write token"
call GET /healthz

heading "Create an instance (202, state pending)"
call POST /v1/instances '{"name":"web-1","cpu":2,"memoryMiB":4096,"diskGiB":40,"image":"debian-12","zone":"hk-1a","tags":{"owner":"demo"}}'
id=$(field id)
[[ $status == 202 && -n $id ]] || { echo "demo: create failed" >&2; exit 1; }

heading "Poll it until it is running"
wait_state "$id" running

heading "Resize it: running → resizing → running"
call PATCH "/v1/instances/$id" '{"cpu":4,"memoryMiB":8192}'
wait_state "$id" running

heading "Add a 300ms latency rule on GetInstance and time a GET"
call POST /_mock/faults '{"id":"slow-gets","match":{"op":"GetInstance"},"effect":{"type":"latency","latency":"300ms"}}'
call GET "/v1/instances/$id"

heading "Add a 503 rule on ListInstances that fires twice, then list three times"
call POST /_mock/faults '{"id":"flaky-list","match":{"op":"ListInstances"},"effect":{"type":"error","status":503,"code":"ServiceUnavailable","message":"try again"},"count":2}'
for n in 1 2 3; do call GET /v1/instances; done
note "the rules now (note \"fired\" and \"state\"):"
call GET /_mock/faults
call DELETE /_mock/faults

heading "Crash the instance through the chaos API"
call POST /_mock/chaos/crash "{\"ids\":[\"$id\"]}"
call GET "/v1/instances/$id"

heading "The request journal (last 8 entries) and its 5xx count"
QUIET=1 call GET '/_mock/journal?limit=8'
note "seq method path → status (latency) fault:"
{ cat "$work/body"; echo; } | sed 's/},{"seq"/}\n{"seq"/g' |
  sed -n 's/.*"seq":\([0-9]*\).*"method":"\([^"]*\)","path":"\([^"]*\)".*"status":\([0-9]*\),"latencyMs":\([0-9.]*\).*"fault":\([^,]*\),.*/   #\1 \2 \3 → \4 (\5 ms) fault=\6/p'
call GET '/_mock/journal/count?status=5xx'

heading "An excerpt of /metrics"
curl -sS "$base/metrics" | grep -E '^mockcloud_(instances|faults_injected_total|http_requests_total\{op="ListInstances")' | sed 's/^/   /' || true

heading "Delete the instance and wait until it is gone"
call DELETE "/v1/instances/$id"
for ((i = 0; i < 100; i++)); do
  code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$base/v1/instances/$id")
  [[ $code == 404 ]] && break
  sleep 0.2
done
note "GET /v1/instances/$id now answers $code"

heading "Stop mockcloud (SIGTERM to pid $pid)"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
note "exit status $rc; state file $(wc -c <"$work/state.json") bytes"
note "its log:"
sed 's/^/   | /' "$work/mockcloud.log"
[[ $rc -eq 0 ]] || { echo "demo: mockcloud exited with $rc" >&2; exit 1; }
printf '\n%sdemo finished%s\n' "$bold" "$plain"
