#!/usr/bin/env bash
# An emulated SEV hypervisor outside pytest (for the demo and molecule): a real
# libvirtd + sshd on a "host" of its own (namespaces, 198.51.100.x over a
# veth) whose QEMU is the emulated SEV platform (tests/platform).
#
#   bash scripts/hypervisor.sh start  NAME [--state-dir DIR] [--timeout S]
#   bash scripts/hypervisor.sh status NAME [--state-dir DIR]
#   bash scripts/hypervisor.sh stop   NAME [--state-dir DIR] [--purge]
#
# NAME is the host's name (e.g. sev-demo1). start is idempotent: when NAME
# is already running it prints the same status. The instance is owned by a
# detached holder process, tracked by DIR/NAME.pid; DIR/NAME.json is the status,
# DIR/NAME.log the holder's log, DIR/NAME.platform the platform's state (kept
# across restarts so the PDH stays; stop --purge removes it). DIR defaults to
# $SEV_HYPERVISOR_STATE_DIR or /tmp/confidential-sev-hypervisors.
# start and status print JSON: hostname, addr, uris, ansible_host_vars,
# inventory, state_dir, export_dir, ...
#
# Exit codes: 0 ok (start: running; stop: stopped or was not running;
# status: running), 1 failed (log tail on stderr), 2 usage, 3 status: not running.
# Needs root. See tests/integration/README.md ("Emulated hypervisors").
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv
[[ $EUID -eq 0 ]] || die "scripts/hypervisor.sh needs root (namespaces, mounts, veth)"
export PYTHONPATH="$COLLECTION_ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$VENV/bin/python" "$REPO/tests/integration/harness/hypervisor_cli.py" "$@"
