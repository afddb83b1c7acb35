#!/usr/bin/env bash
# Coverage-guided fuzzing (atheris / libFuzzer) of the parsers of untrusted
# input: the OVMF footer table, SEV/AMD certificates and the platform chain,
# the domain XML and host report readers, sev_measurement_validate's options
# (tests/fuzz/targets.py). Each target runs for a fixed time; a crash is any
# exception outside the documented error classes (or an rc 6 result).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   # default 60 s, all targets
#
# Output in build/fuzz/<target>/ (corpus/, crashes/, log); a summary line per
# target (seconds, executions, crashes). Exits 1 if any target crashed.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv
cd "$REPO"
seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(ovmf certs xml args)
[[ "$seconds" =~ ^[0-9]+$ ]] || die "SECONDS must be a number, got '$seconds'"
"$VENV/bin/python" -c 'import atheris' 2>/dev/null || die "atheris is not installed (bash scripts/setup.sh)"
export PYTHONPATH="$COLLECTION_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTION_ROOT"
out="$REPO/build/fuzz"
failed=0
summary=()
for target in "${targets[@]}"; do
    dir="$out/$target"
    mkdir -p "$dir/corpus" "$dir/crashes"
    log="$dir/log"
    t0=$SECONDS
    rc=0
    # -timeout: an input that takes 10 s is a hang (reported like a crash); -rss_limit_mb: 2 GB
    timeout --kill-after=30 $((seconds + 120)) "$VENV/bin/python" tests/fuzz/run_atheris.py "$target" \
        "$dir/corpus" "$dir/crashes" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    crashes="$(find "$dir/crashes" -type f | wc -l)"
    line="$(printf '%-6s %4ds  %8s executions  %d crash(es)  corpus %d  (exit %d, %s)' "$target" \
        $((SECONDS - t0)) "${execs:-?}" "$crashes" "$(find "$dir/corpus" -type f | wc -l)" "$rc" "$log")"
    summary+=("$line")
    echo "$line"
    if ((rc != 0 || crashes != 0)); then
        failed=1
        grep -E -m 5 -A 25 'Uncaught Python exception|ERROR: libFuzzer' "$log" || tail -n 40 "$log"
    fi
done
printf '\n== fuzz summary (%s s per target)\n' "$seconds"
printf '%s\n' "${summary[@]}"
exit "$failed"
