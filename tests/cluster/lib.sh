# Helpers for the local-plane tests (sourced by run.sh): counting, checks,
# and a kubectl bound to the plane under test.
#
# A check records one result and never exits, so one broken case cannot hide
# the others; run.sh prints the tally.

# shellcheck shell=bash
TESTS_PASSED=0
TESTS_FAILED=0
TESTS_SKIPPED=0
FAILED_NAMES=()

section() { printf '\n== %s\n' "$1"; }

pass() {
  TESTS_PASSED=$((TESTS_PASSED + 1))
  printf '  ok    %s\n' "$1"
}

# fail NAME [DETAIL...]: record a failure; details are printed indented.
fail() {
  local name=$1
  shift
  TESTS_FAILED=$((TESTS_FAILED + 1))
  FAILED_NAMES+=("$name")
  printf '  FAIL  %s\n' "$name"
  local d
  for d in "$@"; do
    printf '%s\n' "$d" | sed 's/^/          | /'
  done
}

skip() {
  TESTS_SKIPPED=$((TESTS_SKIPPED + 1))
  printf '  skip  %s (%s)\n' "$1" "$2"
}

# k ARGS...: kubectl against the plane under test, with a discovery cache of
# its own (a stale one would hide a version the upgrade test just added).
k() {
  kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$CSL_CLUSTER_DIR/kubectl-cache" \
    --request-timeout=60s "$@"
}

# check_eq NAME WANT GOT
check_eq() {
  if [[ $3 == "$2" ]]; then pass "$1"; else fail "$1" "want: $2" "got:  $3"; fi
}

# check_ok NAME CMD...: CMD must succeed.
check_ok() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "command: $*" "$out"; fi
}

# check_refused NAME OUTPUT STATUS EXPECT...: a request must have failed and
# its message must contain every EXPECT (fixed strings).
check_refused() {
  local name=$1 out=$2 status=$3 e missing=()
  shift 3
  if ((status == 0)); then
    fail "$name" "accepted, but should have been refused" "$out"
    return
  fi
  for e in "$@"; do
    grep -qF -- "$e" <<<"$out" || missing+=("$e")
  done
  if ((${#missing[@]})); then
    fail "$name" "refused, but the message lacks: ${missing[*]}" "$out"
  else
    pass "$name"
  fi
}

# case_header FILE KEY: the values of "# KEY: value" lines of a case file.
case_header() {
  sed -n "s/^# $2: //p" "$1"
}
