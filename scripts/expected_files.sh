#!/usr/bin/env bash
# The collection tarball's file list, checked in as tests/packaging/expected_files.txt.
#
#   bash scripts/expected_files.sh               # regenerate the list (then review: git diff)
#   bash scripts/expected_files.sh --check       # build now, compare, exit 1 if it differs
#   bash scripts/expected_files.sh --compare F   # compare list F (one path a line) with it
#
# The tarball is built (ansible-galaxy collection build, galaxy.yml's manifest:)
# from a copy of the files git knows or would add (tracked, and untracked but
# not ignored), so local keys, caches and editor files never reach the list.
# tests/packaging/test_build.py builds with junk planted everywhere and
# compares with this list; when a collection file is added or removed on
# purpose, regenerate it here.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"
EXPECTED="$REPO/tests/packaging/expected_files.txt"

# compare LIST: clear message and exit 1 when LIST differs from $EXPECTED.
compare() {
    local list="$1" extra missing line
    [[ -f "$EXPECTED" ]] || die "$EXPECTED does not exist: run bash scripts/expected_files.sh"
    extra="$(LC_ALL=C comm -13 <(LC_ALL=C sort -u "$EXPECTED") <(LC_ALL=C sort -u "$list"))"
    missing="$(LC_ALL=C comm -23 <(LC_ALL=C sort -u "$EXPECTED") <(LC_ALL=C sort -u "$list"))"
    if [[ -z "$extra" && -z "$missing" ]]; then
        log "the tarball's $(wc -l <"$list") entries match tests/packaging/expected_files.txt"
        return 0
    fi
    {
        echo "The collection tarball's file list differs from tests/packaging/expected_files.txt."
        if [[ -n "$extra" ]]; then
            echo "Shipped but not expected:"
            while IFS= read -r line; do printf '  + %s\n' "$line"; done <<<"$extra"
        fi
        if [[ -n "$missing" ]]; then
            echo "Expected but not shipped:"
            while IFS= read -r line; do printf '  - %s\n' "$line"; done <<<"$missing"
        fi
        echo "A key, secret, cache or editor file shipped: fix galaxy.yml's manifest: directives."
        echo "A collection file added or removed on purpose: bash scripts/expected_files.sh, review git diff."
    } >&2
    return 1
}

# build_list OUT: build from a clean copy of the tree, write the sorted file list to OUT.
build_list() {
    local out="$1" tmp tarball
    "$VENV/bin/python" -c 'import distlib' 2>/dev/null ||
        die "galaxy.yml's manifest: needs distlib in $VENV: run scripts/setup.sh (requirements-dev.txt)"
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: tmp is local
    trap "rm -rf '$tmp'" RETURN
    copy_collection "$tmp/src"
    mkdir -p "$tmp/dist"
    "$VENV/bin/ansible-galaxy" collection build --force --output-path "$tmp/dist" "$tmp/src" >&2
    tarball="$(ls "$tmp"/dist/confidential-sev-*.tar.gz)"
    tar -tzf "$tarball" | sed 's|/$||' | LC_ALL=C sort >"$out"
}

case "${1:-}" in
    "")
        tmp_list="$(mktemp)"
        build_list "$tmp_list"
        mv "$tmp_list" "$EXPECTED"
        chmod 0644 "$EXPECTED"
        log "wrote $EXPECTED ($(wc -l <"$EXPECTED") entries); review it: git diff -- tests/packaging/expected_files.txt"
        ;;
    --check)
        tmp_list="$(mktemp)"
        build_list "$tmp_list"
        rc=0
        compare "$tmp_list" || rc=$?
        rm -f "$tmp_list"
        exit "$rc"
        ;;
    --compare)
        [[ -n "${2:-}" && -f "$2" ]] || die "--compare needs a file list"
        compare "$2"
        ;;
    *) die "unknown argument '$1' (none, --check, or --compare FILE)" ;;
esac
