#!/usr/bin/env bash
# Make the collection docsite's guides (docs/docsite/rst/*.rst) from the
# Markdown guides in docs/*.md, which stay the source (tests cite them).
#
#   bash scripts/docsite.sh           # regenerate docs/docsite/rst/ and docs/docsite/extra-docs.yml
#   bash scripts/docsite.sh --check   # fail if the checked-in files differ from what it would make
#
# antsibull-docs takes extra docs as reStructuredText only; pandoc (Debian's,
# installed here if missing) converts, then scripts/docsite_rst.py gives each
# guide its docsite label and turns links to other guides into :ref:s and
# links into the repository into its URL (the docsite has no repository tree).
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check=0
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        *) die "unknown argument: $arg (usage: scripts/docsite.sh [--check])" ;;
    esac
done

if ! command -v pandoc >/dev/null; then
    ((EUID == 0)) || die "pandoc is not installed (apt-get install pandoc)"
    log "installing pandoc (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q pandoc >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pandoc >/dev/null; } ||
        die "could not install pandoc"
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/rst"
# The guides, in docsite order: every docs/*.md, these first.
GUIDES=()
for guide in security troubleshooting reference-values vmsa-variants scale; do
    [[ -f "$REPO/docs/$guide.md" ]] && GUIDES+=("$guide")
done
for src in "$REPO"/docs/*.md; do
    guide="$(basename "$src" .md)"
    [[ " ${GUIDES[*]} " == *" $guide "* ]] || GUIDES+=("$guide")
done
for guide in "${GUIDES[@]}"; do
    src="$REPO/docs/$guide.md"
    pandoc --from=gfm --to=rst --wrap=preserve --columns=1000 --output="$out/rst/$guide.raw.rst" "$src"
done
python3 "$REPO/scripts/docsite_rst.py" "$REPO" "$out" "${GUIDES[@]}"
rm -f "$out"/rst/*.raw.rst

dest="$REPO/docs/docsite"
if ((check)); then
    status=0
    diff -ru "$dest/rst" "$out/rst" || status=1
    diff -u "$dest/extra-docs.yml" "$out/extra-docs.yml" || status=1
    ((status == 0)) || die "docs/docsite is out of date with docs/*.md: run bash scripts/docsite.sh and commit docs/docsite"
    log "docs/docsite is in sync with docs/*.md"
    exit 0
fi
mkdir -p "$dest/rst"
rm -f "$dest"/rst/*.rst
cp "$out"/rst/*.rst "$dest/rst/"
cp "$out/extra-docs.yml" "$dest/extra-docs.yml"
log "wrote $dest/rst (${#GUIDES[@]} guides) and $dest/extra-docs.yml"
