#!/usr/bin/env bash
# Run test programs one after another, each in its own process with a time
# limit, and print one closing line: "<kind>: N passed, N failed", where N
# counts test cases (from each program's CUnit run summary). A program that
# exits non-zero without a failed case in its summary (a crash, a timeout, a
# sanitizer report at exit) counts as one more failure.
set -uo pipefail
kind=$1; shift
limit=${CSL_TEST_TIMEOUT:-600}
passed=0 failed=0 failed_names=()
out=$(mktemp); trap 'rm -f "$out"' EXIT
for t in "$@"; do
  name=$(basename "$t")
  echo "== $kind/$name"
  timeout --kill-after=10 "$limit" "$t" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  # CUnit: "               tests      8      8      8      0        0"
  read -r p f < <(awk '$1 == "tests" && NF >= 6 { print $4, $5 }' "$out" | tail -1)
  p=${p:-0} f=${f:-0}
  [[ $p =~ ^[0-9]+$ ]] || p=0
  [[ $f =~ ^[0-9]+$ ]] || f=0
  if [[ $rc -ne 0 && $f -eq 0 ]]; then
    f=1
    [[ $rc -eq 124 ]] && echo "!! $name: timed out after ${limit}s" || echo "!! $name: exited with status $rc"
  fi
  passed=$((passed + p)); failed=$((failed + f))
  [[ $rc -ne 0 ]] && failed_names+=("$name")
done
[[ ${#failed_names[@]} -gt 0 ]] && echo "failing $kind programs: ${failed_names[*]}"
echo "$kind: $passed passed, $failed failed"
[[ ${#failed_names[@]} -eq 0 ]]
