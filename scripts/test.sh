#!/usr/bin/env bash
# Run all tests: setup, ansible-test sanity, ansible-lint, the collection docs,
# pytest (the testpaths of pytest.ini), the ansible-core version matrix,
# galaxy-importer, sanity on the other cores, the demo, then
# tests/integration/run.sh in three stages, then the molecule scenarios. Every
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
# Collection docs: antsibull-docs lint, docsite rst in sync with docs/*.md, changelog.
run_step docs bash scripts/docs_lint.sh || true
run_step pytest run_pytest || true
# ansible-core 2.16-2.19, each from the built tarball in its own venv: docs,
# ad-hoc calls, the role's argument spec.
run_step matrix bash scripts/matrix.sh || true
# galaxy-importer (Galaxy's and Automation Hub's check) on the built tarball.
run_step importer bash scripts/galaxy_importer.sh || true
# ansible-test sanity on the other supported cores (the sanity step above runs
# the venv's own, 2.19).
run_step sanity-matrix env MATRIX_VERSIONS="${SANITY_MATRIX_VERSIONS:-2.16 2.17 2.18}" \
    bash scripts/sanity_matrix.sh || true
# The README's main command must keep working: run it as a test.
run_step demo bash scripts/demo.sh || true
# Real libvirtd instances, in two stages: the libvirt harness, modules and
# role failure paths; then the launches on emulated SEV hypervisors. Every
# tests/integration/test_*.py must be in one stage (checked: none is dropped).
INTEGRATION_STAGE=(test_harness.py test_hypervisors.py test_modules.py test_role.py)
E2E_STAGE=(test_e2e_launch.py test_e2e_role.py test_faults.py test_hygiene.py)
# Fleets: batch host modules, the role launching a host's guests together (one
# bad guest among 50), the role at scale settings on three hosts.
FLEET_STAGE=(test_batch_modules.py test_fleet.py test_scale.py)
# shellcheck disable=SC2317  # invoked indirectly, through run_step
check_stages() {
    local f missing=()
    for f in tests/integration/test_*.py; do
        f="${f##*/}"
        [[ " ${INTEGRATION_STAGE[*]} ${E2E_STAGE[*]} ${FLEET_STAGE[*]} " == *" $f "* ]] || missing+=("$f")
    done
    ((${#missing[@]} == 0)) || { echo "not in any stage of scripts/test.sh: ${missing[*]}" >&2; return 1; }
}
run_step stages check_stages || true
run_step integration bash tests/integration/run.sh "${INTEGRATION_STAGE[@]/#/tests/integration/}" || true
run_step e2e bash tests/integration/run.sh "${E2E_STAGE[@]/#/tests/integration/}" || true
run_step fleet bash tests/integration/run.sh "${FLEET_STAGE[@]/#/tests/integration/}" || true
# The role's molecule scenarios (extensions/molecule/) on emulated hypervisors.
run_step molecule bash scripts/molecule.sh || true

print_summary
exit "$failed"
