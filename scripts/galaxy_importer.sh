#!/usr/bin/env bash
# galaxy-importer, the check Galaxy and Automation Hub run on an upload, on
# the collection tarball, with its default configuration:
#
#   bash scripts/galaxy_importer.sh            # build the tarball, import it
#   bash scripts/galaxy_importer.sh FILE.tar.gz
#
# galaxy-importer (pinned below) goes into build/venvs/importer from the
# package registry on the first run (about a minute), never into .venv: it
# brings its own ansible-core and ansible-lint. Its defaults: ansible-doc on
# every plugin, ansible-lint (offline), the changelog check, the role and
# collection metadata and docs checks; ansible-test (needs a container) and
# flake8 off. The configuration is an empty file, so no
# /etc/galaxy-importer/galaxy-importer.cfg or GALAXY_IMPORTER_* variable on
# the machine changes it. Automation Hub's require_v1_or_greater (version
# >= 1.0.0) is off by default and stays off until the first stable release.
#
# Exit status: non-zero if galaxy-importer fails or logs any ERROR or WARNING
# (Galaxy shows warnings to every user of the collection).
# Output: build/importer/importer.log and importer_result.json.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"
sanitize_pip_env
start=$SECONDS

IMPORTER_VERSION=0.4.44
IVENV="$REPO/build/venvs/importer"
WORK="$REPO/build/importer"

[[ -x "$VENV/bin/python" ]] || die "no virtualenv at $VENV: run scripts/setup.sh first"
BASE_PYTHON="$("$VENV/bin/python" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
want="galaxy-importer==$IMPORTER_VERSION"
if [[ ! -x "$IVENV/bin/python" || "$(cat "$IVENV/.stamp" 2>/dev/null)" != "$want" ]]; then
    log "installing $want into $IVENV"
    rm -rf "$IVENV"
    "$BASE_PYTHON" -m venv "$IVENV"
    "$IVENV/bin/python" -m pip install -q "$want" >"$IVENV.pip.log" 2>&1 ||
        { cat "$IVENV.pip.log" >&2; die "pip install $want failed"; }
    echo "$want" >"$IVENV/.stamp"
fi

rm -rf "$WORK"
mkdir -p "$WORK/dist" "$WORK/tmp"
if (($#)); then
    [[ -f "$1" ]] || die "no such tarball: $1"
    tarball="$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")"
else
    # Built with the project's ansible-galaxy: the manifest needs distlib (.venv has it).
    "$VENV/bin/ansible-galaxy" collection build --force --output-path "$WORK/dist" "$REPO" >/dev/null
    tarball="$(ls "$WORK"/dist/confidential-sev-*.tar.gz)"
fi
log "galaxy-importer $IMPORTER_VERSION on $tarball"

# Defaults only: an empty configuration file, no GALAXY_IMPORTER_* overrides.
: >"$WORK/galaxy-importer.cfg"
while IFS= read -r var; do unset "$var"; done < <(env | sed -n 's/^\(GALAXY_IMPORTER_[A-Z_]*\)=.*/\1/p')
export GALAXY_IMPORTER_CONFIG="$WORK/galaxy-importer.cfg"
# Its ansible-doc and ansible-lint must see the tarball's content only.
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS ANSIBLE_CONFIG
export ANSIBLE_LOCAL_TEMP="$WORK/tmp" ANSIBLE_HOME="$WORK/ansible-home" ANSIBLE_NOCOLOR=1
export PATH="$IVENV/bin:$PATH"

rc=0
(cd "$WORK" && "$IVENV/bin/python" -m galaxy_importer.main "$tarball") >"$WORK/importer.log" 2>&1 || rc=$?
cat "$WORK/importer.log"
# galaxy-importer logs problems as "ERROR: ..." / "WARNING: ..." lines and
# exits 0 for most of them: any such line fails this script.
problems="$(grep -E '^(ERROR|WARNING)' "$WORK/importer.log" || true)"
if ((rc != 0)) || [[ -n "$problems" ]]; then
    log "galaxy-importer: FAILED (exit $rc) in $(elapsed "$start")"
    [[ -z "$problems" ]] || printf '%s\n' "$problems" >&2
    exit 1
fi
log "galaxy-importer: PASSED in $(elapsed "$start") ($WORK/importer.log)"
