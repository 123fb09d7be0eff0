#!/usr/bin/env bash
# Run test programs one after another, each in its own process with a time
# limit, and print one closing line: "<kind>: N passed, N failed".
# A test program exits 0 when all its cases passed. Its own output (CUnit's
# run summary) goes through unchanged.
set -uo pipefail
kind=$1; shift
limit=${CSL_TEST_TIMEOUT:-600}
passed=0 failed=0 failed_names=()
for t in "$@"; do
  name=$(basename "$t")
  echo "== $kind/$name"
  if timeout --kill-after=10 "$limit" "$t"; then
    passed=$((passed + 1))
  else
    rc=$?
    [[ $rc -eq 124 ]] && echo "!! $name: timed out after ${limit}s"
    failed=$((failed + 1)); failed_names+=("$name")
  fi
done
[[ $failed -gt 0 ]] && echo "failed $kind programs: ${failed_names[*]}"
echo "$kind: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
