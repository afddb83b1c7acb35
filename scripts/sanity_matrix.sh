#!/usr/bin/env bash
# ansible-test sanity on every supported ansible-core (its own CI stage: it
# takes long on 2 cores, the first run longest while ansible-test fills its
# per-test venvs from the package registry):
#
#   bash scripts/sanity_matrix.sh                          # 2.16 2.17 2.18 2.19, all tests
#   MATRIX_VERSIONS="2.16 2.19" bash scripts/sanity_matrix.sh --test pep8   # extra args go to ansible-test
#
# Each version uses build/venvs/core-<version> (made by scripts/matrix.sh
# --venvs-only) and its own real copy of the collection under
# build/sanity-matrix/core-<version>/ansible_collections/confidential/sev/,
# made its own git repository (see scripts/sanity.sh for why), so the
# versions and scripts/sanity.sh (build/sanity/) never share a tree.
#
# Only Python 3.11 exists here: sanity runs with --python 3.11, so the
# modules' target Pythons (tests/config.yml: >=3.7) are not compiled or
# imported on 3.7-3.10 by ansible-test; tests/packaging/test_target_python.py
# parses them with the 3.7 grammar instead.
#
# ansible-test --venv bootstraps pip in each venv with
# ~/.ansible/test/cache/get_pip_<pip version>.py, downloaded from a host that
# is unreachable here: scripts/ansible_test_get_pip.py is installed there for
# every pip version the four ansible-test versions ask for (it bootstraps pip
# with ensurepip and drops PIP_CONFIG_FILE).
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"
sanitize_pip_env
start=$SECONDS

read -r -a versions <<<"${MATRIX_VERSIONS:-2.16 2.17 2.18 2.19}"
for v in "${versions[@]}"; do
    [[ "$v" =~ ^2\.1[6-9]$ ]] || die "MATRIX_VERSIONS: unsupported version '$v' (2.16 2.17 2.18 2.19)"
done
bash "$REPO/scripts/matrix.sh" --venvs-only "${versions[@]}"
PYVER="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

# --- the offline pip bootstrap, for each pip version any ansible-test wants ---
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
for v in "${versions[@]}"; do
    reqs_py="$(echo "$REPO"/build/venvs/core-"$v"/lib/python*/site-packages/ansible_test/_internal/python_requirements.py)"
    [[ -f "$reqs_py" ]] || die "no ansible_test in build/venvs/core-$v"
    while read -r pip_version; do
        target="$cache/get_pip_${pip_version//./_}.py"
        if [[ -e "$target" ]] && ! grep -q 'confidential.sev offline get-pip bootstrap' "$target"; then
            continue    # a real get-pip.py someone downloaded: keep it
        fi
        cmp -s "$REPO/scripts/ansible_test_get_pip.py" "$target" 2>/dev/null ||
            install -m 0644 "$REPO/scripts/ansible_test_get_pip.py" "$target"
    done < <(grep -oE "pip=['\"][0-9][0-9a-z.]*['\"]" "$reqs_py" | grep -oE "[0-9][0-9a-z.]*" | sort -u)
done

declare -a SUMMARY=()
failed=0
for v in "${versions[@]}"; do
    t0=$SECONDS
    root="$REPO/build/sanity-matrix/core-$v"
    dest="$root/ansible_collections/confidential/sev"
    rm -rf "$root"
    # copied per version, as the tree may change during a long run
    copy_collection "$dest"
    git -C "$dest" init -q
    bin="$REPO/build/venvs/core-$v/bin"
    core="$("$bin/python" -c 'from ansible import release; print(release.__version__)')"
    log "ansible-core $core: ansible-test sanity --venv --python $PYVER $*"
    rc=0
    (cd "$dest" && PATH="$bin:$PATH" VIRTUAL_ENV="$REPO/build/venvs/core-$v" \
        "$bin/ansible-test" sanity --venv --python "$PYVER" "$@") >"$root.log" 2>&1 || rc=$?
    tail -n 25 "$root.log"
    status=PASS
    if ((rc != 0)); then status=FAIL failed=1; fi
    SUMMARY+=("$(printf 'core %-5s (%-8s) sanity %s %5ss  %s' "$v" "$core" "$status" $((SECONDS - t0)) \
        "$([[ $status == PASS ]] || echo "exit $rc, see $root.log")")")
done

printf '\n======== ansible-test sanity matrix (%s) ========\n' "$(elapsed "$start")"
printf '%s\n' "${SUMMARY[@]}"
if ((failed)); then echo "SANITY MATRIX: FAILED"; else echo "SANITY MATRIX: PASSED"; fi
exit "$failed"
