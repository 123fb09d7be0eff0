# Checks that need no cluster: generated CRDs are current, scripts parse and
# pass shellcheck (when it is installed), the kind config is well formed.

# shellcheck shell=bash
test_static() {
  local f out
  section "static: generated files and scripts"
  check_ok "config/crd/bases is up to date with config/crd/src" "$REPO_DIR/config/crd/generate.sh" --check
  local -a scripts
  mapfile -t scripts < <(find "$REPO_DIR/kind" "$REPO_DIR/tests/cluster" "$REPO_DIR/config" \( -name '*.sh' -o -path '*/stubs/tool' \) | sort)
  for f in "${scripts[@]}"; do
    check_ok "bash -n ${f#"$REPO_DIR"/}" bash -n "$f"
  done
  if command -v shellcheck >/dev/null; then
    if out=$(cd "$REPO_DIR" && shellcheck -x "${scripts[@]#"$REPO_DIR"/}" 2>&1); then
      pass "shellcheck of ${#scripts[@]} scripts"
    else
      fail "shellcheck of ${#scripts[@]} scripts" "$out"
    fi
  else
    skip "shellcheck of ${#scripts[@]} scripts" "shellcheck is not installed"
  fi
}
