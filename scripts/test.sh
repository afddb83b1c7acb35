#!/usr/bin/env bash
# Run all tests: setup, ansible-test sanity, ansible-lint, pytest
# (tests/unit + tests/differential via pytest.ini), the demo, then
# tests/integration/run.sh when it exists, then the molecule scenarios. Every
# step runs even if an earlier one failed (except setup); the script exits
# non-zero if any step failed.
#
#   bash scripts/test.sh
#   TEST_SKIP="sanity lint" bash scripts/test.sh   # skip steps (local use)
#   PYTEST_ARGS="-k ovmf -x" bash scripts/test.sh  # extra pytest arguments
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

declare -a SUMMARY=()
failed=0
pytest_line=""

skipped() { [[ " ${TEST_SKIP:-} " == *" $1 "* ]]; }

# run_step NAME COMMAND...: run, time and record one step.
run_step() {
    local name="$1"; shift
    if skipped "$name"; then
        SUMMARY+=("$(printf '%-12s SKIP  (TEST_SKIP)' "$name")")
        return 0
    fi
    printf '\n######## %s: %s\n' "$name" "$*"
    local t0=$SECONDS rc=0
    "$@" || rc=$?
    local status=PASS note=""
    if ((rc != 0)); then
        status=FAIL failed=1
        note=" exit $rc"
        [[ "$name" == pytest && $rc -eq 5 ]] && note=" exit 5: no tests collected"
    fi
    SUMMARY+=("$(printf '%-12s %s  %4ds%s' "$name" "$status" $((SECONDS - t0)) "$note")")
    printf '######## %s: %s (%ds)%s\n' "$name" "$status" $((SECONDS - t0)) "$note"
    return "$rc"
}

print_summary() {
    printf '\n======== test summary ========\n'
    printf '%s\n' "${SUMMARY[@]}"
    if ((failed)); then echo "RESULT: FAILED"; else echo "RESULT: PASSED"; fi
    # Repeat pytest's own closing line last, so it stays the final test-runner line.
    [[ -n "$pytest_line" ]] && printf '%s\n' "$pytest_line"
    return 0
}

# shellcheck disable=SC2317  # invoked indirectly, through run_step
run_pytest() {
    local args=() log rc
    if "$VENV/bin/python" -c 'import xdist' 2>/dev/null; then args+=(-n 2); fi
    # shellcheck disable=SC2206  # word splitting of PYTEST_ARGS is intended
    args+=(${PYTEST_ARGS:-})
    log="$(mktemp)"
    set +e
    PYTHONPATH="$COLLECTION_ROOT${PYTHONPATH:+:$PYTHONPATH}" \
        ANSIBLE_COLLECTIONS_PATH="$COLLECTION_ROOT" \
        "$VENV/bin/python" -m pytest -p no:cacheprovider "${args[@]}" 2>&1 | tee "$log"
    rc="${PIPESTATUS[0]}"
    set -e
    pytest_line="$(grep -E '^=+ .+ in [0-9.]+s( \([0-9:]+\))? =+$' "$log" | tail -n 1 || true)"
    rm -f "$log"
    return "$rc"
}

if ! run_step setup bash scripts/setup.sh; then
    print_summary
    exit 1
fi
activate_venv

run_step sanity bash scripts/sanity.sh || true
run_step lint bash scripts/lint.sh || true
run_step pytest run_pytest || true
# The README's main command must keep working: run it as a test.
run_step demo bash scripts/demo.sh || true
if [[ -f tests/integration/run.sh ]]; then
    run_step integration bash tests/integration/run.sh || true
else
    SUMMARY+=("$(printf '%-12s SKIP  (no tests/integration/run.sh)' integration)")
fi
# The role's molecule scenarios (extensions/molecule/) on emulated hypervisors.
run_step molecule bash scripts/molecule.sh || true

print_summary
exit "$failed"
