#!/usr/bin/env bash
# Shared helpers for the scripts in scripts/. Source it, do not run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Repository root (scripts/..), resolved without following the build/ symlink.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
VENV="${VENV:-$REPO/.venv}"
# Collection tree for imports and ANSIBLE_COLLECTIONS_PATH (symlink to $REPO).
COLLECTION_ROOT="$REPO/build"
COLLECTION_LINK="$COLLECTION_ROOT/ansible_collections/confidential/sev"
export REPO VENV COLLECTION_ROOT COLLECTION_LINK

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Make pip behave the same with or without the machine's PIP_* settings:
# drop settings that point at paths that do not exist (a fresh machine may lack
# them), keep the rest, and silence the root/version-check noise.
sanitize_pip_env() {
    if [[ -n "${PIP_CONFIG_FILE:-}" && "$PIP_CONFIG_FILE" != /dev/null && ! -r "$PIP_CONFIG_FILE" ]]; then
        warn "PIP_CONFIG_FILE=$PIP_CONFIG_FILE does not exist; ignoring it"
        unset PIP_CONFIG_FILE
    fi
    if [[ -n "${PIP_FIND_LINKS:-}" ]]; then
        local keep=() link
        for link in $PIP_FIND_LINKS; do
            if [[ "$link" == *://* || -e "$link" ]]; then keep+=("$link"); fi
        done
        if ((${#keep[@]})); then export PIP_FIND_LINKS="${keep[*]}"; else unset PIP_FIND_LINKS; fi
    fi
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
}

# Put the project venv first on PATH (after setup.sh has created it).
activate_venv() {
    [[ -x "$VENV/bin/python" ]] || die "no virtualenv at $VENV: run scripts/setup.sh first"
    export VIRTUAL_ENV="$VENV"
    export PATH="$VENV/bin:$PATH"
    unset PYTHONHOME
}

# Print elapsed seconds since the given start time (from $SECONDS).
elapsed() { echo "$((SECONDS - $1))s"; }

# copy_collection DEST: the collection's files as they are in the work tree
# (tracked, and untracked but not ignored) copied to DEST, links as links.
# The tools that need a real ansible_collections/NS/NAME tree get this copy.
copy_collection() {
    local dest="$1" f
    local -a files=()
    while IFS= read -r -d '' f; do
        # -c lists files deleted from the work tree too; skip those
        if [[ -e "$REPO/$f" || -L "$REPO/$f" ]]; then files+=("$f"); fi
    done < <(git -C "$REPO" ls-files -z -co --exclude-standard)
    ((${#files[@]})) || die "git ls-files found no files in $REPO"
    mkdir -p "$dest"
    (cd "$REPO" && cp -P --parents -t "$dest" -- "${files[@]}")
}
