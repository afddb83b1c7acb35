#!/usr/bin/env bash
# Run "ansible-test sanity" on the collection, offline-safe and without docker.
#
#   bash scripts/sanity.sh                     # all sanity tests
#   bash scripts/sanity.sh --test pylint -v    # extra args go to ansible-test
#
# ansible-test needs the collection at .../ansible_collections/<ns>/<name>/ as
# a real directory (it resolves the cwd, so build/'s symlink does not work).
# This script copies the tracked + untracked-not-ignored files to
# build/sanity/ansible_collections/confidential/sev/ and makes that copy its
# own git repository: otherwise ansible-test walks up to this repo's .git and
# asks "git ls-files" for the copy, which is ignored (build/), so it would find
# no files at all.
#
# ansible-test --venv creates venvs without pip and bootstraps pip with
# ~/.ansible/test/cache/get_pip_<version>.py, downloaded from a host that is
# unreachable here; we install scripts/ansible_test_get_pip.py there instead.
# The per-test venvs (~/.ansible/test/venv/) are then filled from PyPI on the
# first run and reused afterwards.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv
sanitize_pip_env
start=$SECONDS

command -v ansible-test >/dev/null || die "ansible-test not found in $VENV: run scripts/setup.sh"
PYVER="$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

# --- offline pip bootstrap for ansible-test's venvs ----------------------
reqs_py="$(python -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py"))')"
mapfile -t pip_versions < <(grep -oE "pip=['\"][0-9][0-9a-z.]*['\"]" "$reqs_py" | grep -oE "[0-9][0-9a-z.]*" | sort -u)
((${#pip_versions[@]})) || die "could not find the pip version ansible-test wants in $reqs_py"
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
for v in "${pip_versions[@]}"; do
    target="$cache/get_pip_${v//./_}.py"
    # Never clobber a real get-pip.py that someone downloaded.
    if [[ -e "$target" ]] && ! grep -q 'confidential.sev offline get-pip bootstrap' "$target"; then
        log "keeping existing $target"
        continue
    fi
    cmp -s "$REPO/scripts/ansible_test_get_pip.py" "$target" 2>/dev/null ||
        install -m 0644 "$REPO/scripts/ansible_test_get_pip.py" "$target"
    log "pip bootstrap for ansible-test (pip $v): $target"
done

# --- real copy of the collection -------------------------------------------
SANITY_ROOT="$REPO/build/sanity"
DEST="$SANITY_ROOT/ansible_collections/confidential/sev"
rm -rf "$SANITY_ROOT"
copy_collection "$DEST"
git -C "$DEST" init -q
log "copied the collection to $DEST"

# --- run -------------------------------------------------------------------
cd "$DEST"
log "ansible-test sanity --venv --python $PYVER $*"
rc=0
ansible-test sanity --venv --python "$PYVER" "$@" || rc=$?
log "ansible-test sanity finished in $(elapsed "$start") with exit code $rc (results: $DEST/tests/output/)"
exit "$rc"
