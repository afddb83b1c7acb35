#!/usr/bin/env bash
# Lint the collection's documentation as the docsite build and Galaxy read it:
#
#   bash scripts/docs_lint.sh            # antsibull-docs lint (plugin docs, extra docs, rst), changelog lint
#   bash scripts/docs_lint.sh --no-install   # use build/venvs/antsibull as it is
#
# antsibull-docs and antsibull-changelog live in their own virtualenv,
# build/venvs/antsibull, installed from the package registry: never in .venv,
# whose versions everybody tests with. They read the plugin docs through
# ansible-doc, taken from .venv (the ansible-core the tests use).
#
# antsibull-docs wants the collection at .../ansible_collections/<ns>/<name>/.
# build/ansible_collections/confidential/sev is a symlink to the repository,
# which contains build/ itself (and its copies), so the lint runs on a real
# copy of the tracked and untracked-not-ignored files under build/docs_lint/,
# like scripts/sanity.sh.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
sanitize_pip_env
start=$SECONDS

install=1
for arg in "$@"; do
    case "$arg" in
        --no-install) install=0 ;;
        *) die "unknown argument: $arg (usage: scripts/docs_lint.sh [--no-install])" ;;
    esac
done

[[ -x "$VENV/bin/ansible-doc" ]] || die "no ansible-doc in $VENV: run scripts/setup.sh first"

# --- antsibull's own virtualenv --------------------------------------------
TOOL_VENV="$REPO/build/venvs/antsibull"
# Pinned to minor versions so that a new lint rule is a deliberate upgrade.
TOOLS=("antsibull-docs>=2.28,<3" "antsibull-changelog>=0.36,<1")
# antsibull-changelog imports ansible to know the documentable plugin and object
# types: without ansible-core next to it, it silently leaves out filters ("New
# Plugins") and roles ("New Roles"). The same version as .venv's.
CORE_VERSION="$("$VENV/bin/python" -c 'from ansible.release import __version__; print(__version__)')"
TOOLS+=("ansible-core==$CORE_VERSION")
if ((install)); then
    if [[ ! -x "$TOOL_VENV/bin/python" ]]; then
        log "creating $TOOL_VENV"
        python3 -m venv "$TOOL_VENV"
    fi
    # pip's warnings about the machine's unreachable find-links are noise here.
    if ! "$TOOL_VENV/bin/python" -m pip install -q "${TOOLS[@]}" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); then
        die "pip could not install ${TOOLS[*]} into $TOOL_VENV"
    fi
fi
[[ -x "$TOOL_VENV/bin/antsibull-docs" ]] || die "no antsibull-docs in $TOOL_VENV (run without --no-install)"
[[ -x "$TOOL_VENV/bin/antsibull-changelog" ]] || die "no antsibull-changelog in $TOOL_VENV (run without --no-install)"
log "$("$TOOL_VENV/bin/antsibull-docs" --version 2>&1 | head -1), antsibull-changelog $("$TOOL_VENV/bin/antsibull-changelog" --version 2>&1 | head -1)"

# --- real copy of the collection -------------------------------------------
LINT_ROOT="$REPO/build/docs_lint"
DEST="$LINT_ROOT/ansible_collections/confidential/sev"
rm -rf "$LINT_ROOT"
copy_collection "$DEST"
# antsibull-docs copies the collection with "git ls-files" when it sits in a
# git work tree: without a repository of its own the copy is this repository's
# ignored build/ and no plugin would be found (the lint would pass on nothing).
git -C "$DEST" init -q
git -C "$DEST" add -A

# ansible-doc from .venv after antsibull's tools on PATH; the collection only
# from the copy (never an installed confidential.sev elsewhere).
export PATH="$TOOL_VENV/bin:$VENV/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$LINT_ROOT"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false

failed=0
# --- the checked-in rst is what scripts/docsite.sh makes from docs/*.md ------
if [[ -x "$REPO/scripts/docsite.sh" || -f "$REPO/scripts/docsite.sh" ]]; then
    log "docs/docsite/rst in sync with docs/*.md (scripts/docsite.sh --check)"
    bash "$REPO/scripts/docsite.sh" --check || failed=1
fi

# --- antsibull-docs: plugin docs (RV()/O() references, markup, schema), ----
# --- extra docs (extra-docs.yml, links.yml) and every rst file (rstcheck) ---
log "antsibull-docs lint-collection-docs --plugin-docs"
(cd "$DEST" && antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs \
    --validate-collection-refs=self --disallow-unknown-collection-refs .) || failed=1
# The linter is silent on a collection it found no plugin in: make sure it saw them.
n_modules="$(ansible-doc -t module -l confidential.sev 2>/dev/null | grep -c '^confidential\.sev\.' || true)"
((n_modules > 0)) || { warn "ansible-doc lists no module of confidential.sev in $LINT_ROOT"; failed=1; }
log "ansible-doc lists $n_modules modules of confidential.sev"

# --- changelog fragments ------------------------------------------------------
log "antsibull-changelog lint"
(cd "$DEST" && antsibull-changelog lint) || failed=1

# --- the changelog a release would render (in a throw-away copy) ----------------
log "antsibull-changelog release --version <galaxy.yml version> (dry run in a copy)"
REL="$LINT_ROOT/release/ansible_collections/confidential/sev"
mkdir -p "$(dirname "$REL")"
cp -a "$DEST" "$REL"
rm -rf "$REL/.git" "$REL/changelogs/.plugin-cache.yaml"
version="$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "$REPO/galaxy.yml")"
if (cd "$REL" && ANSIBLE_COLLECTIONS_PATH="$LINT_ROOT/release" antsibull-changelog release --version "$version" >/dev/null); then
    # new modules, plugins and roles come from their version_added, never from fragments
    for section in "New Modules" "New Roles" "New Plugins"; do
        grep -qx "$section" "$REL/CHANGELOG.rst" || { warn "the rendered changelog has no '$section' section"; failed=1; }
    done
    if grep -niE '^- [a-z_.]+ - new (module|role|filter)' "$REL/CHANGELOG.rst"; then
        warn "a fragment announces a new module/role/filter (antsibull-changelog lists those itself)"; failed=1
    fi
    log "rendered changelog: $REL/CHANGELOG.rst"
else
    warn "antsibull-changelog release failed"; failed=1
fi

((failed == 0)) || die "documentation lint failed ($(elapsed "$start"))"
log "documentation lint clean ($(elapsed "$start"))"
