#!/usr/bin/env bash
# Mutation runs: proof that the scenario library's checks can fail.
#
# Each row runs scenarios against an operator broken on purpose
# (CSL_OPERATOR_BREAK through `scenario-runner run --break MODE`, see
# docs/operator.md) and requires that every one of them FAILS (exit 1, not
# an environment error) with the message that names the broken contract.
# A mutation that the scenarios let pass is a hole in the checks, and this
# script fails.
#
# Ends with "mutations: N caught, M missed"; exits 1 when any was missed.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CSL_BIN_DIR:-$REPO/bin}
S=$REPO/scenarios/suites
OUT=$(mktemp -d "${TMPDIR:-/tmp}/csl-mutations.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

# mode | scenario file | text the failure must contain (grep -E)
rows=(
  "no-finalizer|$S/smoke/create-ready-delete.yaml|metadata\.finalizers"
  "no-idempotency-key|$S/chaos/operator-kill-during-creates.yaml|expected 30, got [0-9]+|noDuplicateCreates"
  "no-idempotency-key|$S/chaos/api-disconnects.yaml|noDuplicateCreates"
  "no-failover|$S/chaos/crash-failover.yaml|InstanceCrashed|failoverCount"
)

caught=0 missed=0
for row in "${rows[@]}"; do
  IFS='|' read -r mode file want <<<"$row"
  name=$(basename "$file" .yaml)
  log=$OUT/$mode-$name.log
  echo "== mutation $mode against $name"
  "$BIN/scenario-runner" run --local --break "$mode" --report-dir "$OUT/reports" "$file" >"$log" 2>&1
  rc=$?
  if [[ $rc -eq 1 ]] && grep -Eq "$want" "$log"; then
    caught=$((caught + 1))
    echo "   caught: $(grep -E -m1 "^FAIL" "$log" | cut -c1-200)"
  else
    missed=$((missed + 1))
    echo "!! MISSED: $name passed or failed for another reason (exit $rc; wanted /$want/); its output:"
    sed 's/^/   | /' "$log"
  fi
done
echo "mutations: $caught caught, $missed missed"
[[ $missed -eq 0 ]]
