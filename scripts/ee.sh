#!/usr/bin/env bash
# Execution environment checks (issue 12 requirements, issue 11 item 3), without a
# container daemon: none exists on this machine and no base image is reachable, so
# `ansible-builder build` cannot run here. What runs instead:
#
#   1. ansible-builder is installed into build/venvs/builder (pip, from the registry;
#      never into .venv), unless it is already there;
#   2. the collection is built (ansible-galaxy collection build, so only what the
#      tarball ships counts) and installed into a temporary collections directory;
#      `ansible-builder introspect` on it must list requirements.txt's Python packages
#      and bindep.txt's system packages under confidential.sev;
#   3. `ansible-builder create` on the top-level execution-environment.yml (the one for
#      users, collection from Galaxy) and on a local variant (the built tarball copied
#      into the context with additional_build_files) must write a Containerfile that
#      installs the collection and runs the introspection, and a _build/ context with
#      the requirements.
#
#   bash scripts/ee.sh            # all checks; prints what it checked; exit 0 = all passed
#   bash scripts/ee.sh --keep     # keep the temporary directory (its path is printed)
#
# Exit codes: 0 all checks passed, 1 a check failed, 2 usage / tooling could not be set up.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KEEP=0
for arg in "$@"; do
    case "$arg" in
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) printf 'ERROR: unknown argument %s (see --help)\n' "$arg" >&2; exit 2 ;;
    esac
done

activate_venv
BUILDER_VENV="$REPO/build/venvs/builder"
if [[ ! -x "$BUILDER_VENV/bin/ansible-builder" ]]; then
    log "installing ansible-builder into $BUILDER_VENV"
    sanitize_pip_env
    python3 -m venv "$BUILDER_VENV" || { echo "ERROR: cannot create $BUILDER_VENV" >&2; exit 2; }
    "$BUILDER_VENV/bin/pip" install -q ansible-builder || { echo "ERROR: pip install ansible-builder failed" >&2; exit 2; }
fi
log "$("$BUILDER_VENV/bin/ansible-builder" --version | head -1 | sed 's/^/ansible-builder /')"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/confidential-sev-ee.XXXXXXXX")"
if ((KEEP)); then log "keeping $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi

log "building the collection tarball"
"$VENV/bin/ansible-galaxy" collection build "$REPO" --output-path "$WORK/dist" >/dev/null
TARBALL="$(ls "$WORK"/dist/confidential-sev-*.tar.gz)"
# --force, and no ANSIBLE_COLLECTIONS_PATH: a copy of confidential.sev on that path (pytest sets it)
# made ansible-galaxy skip the install as "already installed", so nothing was checked.
env -u ANSIBLE_COLLECTIONS_PATH "$VENV/bin/ansible-galaxy" collection install --force "$TARBALL" -p "$WORK/collections" >/dev/null

"$VENV/bin/python" "$REPO/scripts/ee_check.py" --builder "$BUILDER_VENV/bin/ansible-builder" \
    --repo "$REPO" --work "$WORK" --tarball "$TARBALL"
