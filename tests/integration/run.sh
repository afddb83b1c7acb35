#!/usr/bin/env bash
# Integration tests against real, private libvirtd instances (see README.md).
# Needs root (namespaces, mounts, veth). scripts/test.sh runs this file.
#
#   bash tests/integration/run.sh                 # all
#   bash tests/integration/run.sh -k lifecycle    # extra args go to pytest
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
activate_venv
cd "$REPO"
[[ $EUID -eq 0 ]] || die "tests/integration needs root"
export PYTHONPATH="$COLLECTION_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTION_ROOT"
# Test paths among the arguments replace the default (the whole directory):
# scripts/test.sh runs the suite in two stages, each under its own timeout.
paths=(tests/integration)
for arg in "$@"; do
    if [[ "$arg" == tests/* ]]; then paths=(); break; fi
done
# A hung daemon must not hang the run: SIGTERM lets pytest tear the daemons
# down (conftest.py turns it into KeyboardInterrupt), SIGKILL 30 s later.
# On 2 cores: the libvirt stage ~6 min, the end-to-end stage (e2e, faults,
# hygiene) ~15 min; the default leaves room for a loaded machine.
exec timeout --kill-after=30 "${INTEGRATION_TIMEOUT:-2400}" \
    "$VENV/bin/python" -m pytest "${paths[@]}" -p no:cacheprovider "$@"
