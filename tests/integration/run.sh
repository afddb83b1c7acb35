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
# A hung daemon must not hang the run: SIGTERM lets pytest tear the daemons
# down (conftest.py turns it into KeyboardInterrupt), SIGKILL 30 s later.
# The whole suite takes ~9.5 min on 2 cores (the end-to-end tests ~3-5.5 of it), hence 1200 s.
exec timeout --kill-after=30 "${INTEGRATION_TIMEOUT:-1200}" \
    "$VENV/bin/python" -m pytest tests/integration -p no:cacheprovider "$@"
