#!/usr/bin/env bash
# Fleet benchmark (issue 11): the role confidential.sev.sev_launch attesting N guests on
# emulated SEV hypervisors that this script starts and stops itself; prints the wall
# time per guest and its split (QEMU's own start, Ansible's per-task cost, attestation)
# and the goals. A benchmark, not a test: exit 0 once it has printed its figures, 1 if it
# could not measure. See benchmarks/README.md ("Fleet benchmark").
#
#   bash scripts/benchmark_fleet.sh                       # sizes 10,50,100 (by memory), 3 runs each
#   bash scripts/benchmark_fleet.sh --quick               # smoke run: 10 guests, 1 run, initrd x3
#   bash scripts/benchmark_fleet.sh --sizes 10,50 --runs 3 --json /tmp/fleet.json
#   bash scripts/benchmark_fleet.sh --paths per-guest --cases one,initrd
#
# Needs root (namespaces, veth), the README's setup (scripts/setup.sh), ~1.5 GiB of disk
# in the work directory ($FLEET_WORKDIR, else /var/tmp) and the memory it measures
# (QEMU RSS per paused guest; the initrd case ~0.6 GiB per guest). Nothing else running
# is touched: only the hypervisors and domains it started are stopped and removed.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

[[ $EUID -eq 0 ]] || die "scripts/benchmark_fleet.sh needs root (emulated hypervisors: namespaces, mounts, veth)"
if [[ ! -x "$VENV/bin/python" || ! -e "$COLLECTION_LINK" ]]; then
    log "no virtualenv or collection link yet: running scripts/setup.sh"
    bash "$REPO/scripts/setup.sh"
fi
activate_venv
export PYTHONPATH="$COLLECTION_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTION_ROOT"
exec "$VENV/bin/python" "$REPO/benchmarks/fleet.py" "$@"
