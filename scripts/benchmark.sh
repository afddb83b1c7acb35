#!/usr/bin/env bash
# Performance benchmark of the validation engine (not a test: always exits 0
# once it has printed its numbers). See benchmarks/README.md.
#
#   bash scripts/benchmark.sh                 # defaults: 512 MiB initrd, 5 runs each
#   bash scripts/benchmark.sh --repeat 3 --json /tmp/bench.json
#   BENCH_WORKDIR=/var/tmp/sev-bench bash scripts/benchmark.sh   # where inputs live (reused)
#
# Needs ~0.6 GiB of disk in the work directory ($BENCH_WORKDIR, else
# $TMPDIR/confidential-sev-bench; the 1 GiB initrd is sparse) and ~1.2 GiB of
# free RAM for the reference tool, which reads whole files into memory.
# Takes ~30 s (plus a few seconds the first time, to generate the inputs).
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

if [[ ! -x "$VENV/bin/python" || ! -e "$COLLECTION_LINK" ]]; then
    log "no virtualenv or collection link yet: running scripts/setup.sh"
    bash "$REPO/scripts/setup.sh"
fi
activate_venv
export PYTHONPATH="$COLLECTION_ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$VENV/bin/python" "$REPO/benchmarks/measure.py" "$@"
