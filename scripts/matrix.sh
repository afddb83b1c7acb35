#!/usr/bin/env bash
# shellcheck disable=SC2317  # the check_* functions are invoked indirectly, by run_check
# The collection on every supported ansible-core (2.16, 2.17, 2.18, 2.19), each
# in its own virtualenv, from the built tarball as a user installs it:
#
#   bash scripts/matrix.sh                 # all four versions
#   bash scripts/matrix.sh 2.16 2.19       # some of them
#   bash scripts/matrix.sh --venvs-only [VERSION...]   # only create the venvs
#
# Per version, in build/venvs/core-<version>/ (ansible-core <version>.x, the
# newest patch release from the registry, plus cryptography, lxml and distlib;
# libvirt-python is not needed: nothing here runs a host-side module):
#   build        ansible-galaxy collection build (the manifest: allow-list works
#                on that version) and the file list equals
#                tests/packaging/expected_files.txt
#   install      ansible-galaxy collection install of the tarball
#   doc          ansible-doc of every module and plugin, and of the role
#                (-t role); any warning fails it
#   adhoc        controller modules run ad hoc on localhost with no hypervisor:
#                sev_reference_measurement on tests/data's OVMF (its launch
#                digest is the file's SHA-256), sev_session with the real Rome
#                chain in tests/data and AMD's pinned roots (state present, the
#                key files 0600, then absent), bad arguments refused naming
#                the option (rc 2, reason unsupported, no traceback)
#   argspec      the role's argument spec: a wrong-typed variable fails with
#                the argument-spec error naming it; a valid minimal set passes
#                (only the validation runs: the play is limited to a tag no
#                task has, and the role's validation task is tagged always)
# Exit status non-zero if any check failed on any version; a summary table
# ends the output. Logs: build/matrix/core-<version>/*.log.
# ansible-test sanity on the same versions: scripts/sanity_matrix.sh.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"
sanitize_pip_env
start=$SECONDS

ALL_VERSIONS=(2.16 2.17 2.18 2.19)
VENVS_ONLY=0
versions=()
for arg in "$@"; do
    case "$arg" in
        --venvs-only) VENVS_ONLY=1 ;;
        2.1[6-9]) versions+=("$arg") ;;
        *) die "unknown argument '$arg' (versions: ${ALL_VERSIONS[*]}; option: --venvs-only)" ;;
    esac
done
((${#versions[@]})) || versions=("${ALL_VERSIONS[@]}")

# The interpreter the project venv was made from (a pyenv shim resolves to it).
[[ -x "$VENV/bin/python" ]] || die "no virtualenv at $VENV: run scripts/setup.sh first"
BASE_PYTHON="$("$VENV/bin/python" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"

# core_venv VERSION: create or update build/venvs/core-VERSION; prints its path.
# A stamp holds the requirement line: re-runs skip pip unless it changed.
core_venv() {
    local version="$1" dir="$REPO/build/venvs/core-$1"
    local want="ansible-core~=$version.0 cryptography lxml distlib"
    if [[ ! -x "$dir/bin/python" || "$(cat "$dir/.stamp" 2>/dev/null)" != "$want" ]]; then
        log "creating $dir ($want)"
        rm -rf "$dir"
        "$BASE_PYTHON" -m venv "$dir"
        # shellcheck disable=SC2086  # $want is a list of requirements
        "$dir/bin/python" -m pip install -q $want >"$dir.pip.log" 2>&1 ||
            { cat "$dir.pip.log" >&2; die "pip install failed for ansible-core $version"; }
        echo "$want" >"$dir/.stamp"
    fi
    echo "$dir"
}

if ((VENVS_ONLY)); then
    for v in "${versions[@]}"; do core_venv "$v" >/dev/null; done
    log "venvs ready in $(elapsed "$start")"
    exit 0
fi

# --- checks -------------------------------------------------------------------
declare -a SUMMARY=()
failed=0
OUT_ROOT="$REPO/build/matrix"
rm -rf "$OUT_ROOT"
mkdir -p "$OUT_ROOT"

# record VERSION NAME STATUS SECONDS [NOTE]
record() {
    SUMMARY+=("$(printf 'core %-5s %-8s %-4s %4ss  %s' "$1" "$2" "$3" "$4" "${5:-}")")
    [[ "$3" == PASS ]] || failed=1
}

# run_check VERSION NAME FUNCTION: run FUNCTION with its output in NAME.log.
run_check() {
    local version="$1" name="$2" fn="$3" t0=$SECONDS rc=0 logfile
    logfile="$WORK/$name.log"
    # In the background, not behind "||": errexit stays on inside the check
    # (bash ignores set -e in any function called as "f || ...").
    ("$fn") >"$logfile" 2>&1 &
    wait $! || rc=$?
    if ((rc == 0)); then
        record "$version" "$name" PASS $((SECONDS - t0))
    else
        record "$version" "$name" FAIL $((SECONDS - t0)) "see $logfile"
        printf -- '---- core %s %s failed; last lines of %s:\n' "$version" "$name" "$logfile" >&2
        tail -n 30 "$logfile" >&2
    fi
}

# expect_fail PATTERN COMMAND...: the command must fail (non-zero), its output
# must match PATTERN (extended regex over the whole output, newlines included)
# and show no Python traceback.
expect_fail() {
    local pattern="$1" out rc=0; shift
    out="$("$@" 2>&1)" || rc=$?
    printf '%s\n' "$out"
    ((rc != 0)) || { echo "MATRIX: expected a failure, got exit 0: $*"; return 1; }
    grep -Ezq -- "$pattern" <<<"$out" || { echo "MATRIX: the output does not match /$pattern/"; return 1; }
    if grep -q 'Traceback (most recent call last)' <<<"$out"; then
        echo "MATRIX: a traceback instead of a clear error"; return 1
    fi
}

# no_warnings COMMAND...: the command succeeds and prints no [WARNING]/[ERROR]
# (ansible-doc reports a broken doc as a warning and goes on).
no_warnings() {
    local out rc=0
    out="$("$@" 2>&1)" || rc=$?
    printf '%s\n' "$out"
    ((rc == 0)) || { echo "MATRIX: exit $rc: $*"; return 1; }
    if grep -Eq '^\[?(WARNING|ERROR|DEPRECATION WARNING)\]?' <<<"$out"; then
        echo "MATRIX: warnings or errors in the output of: $*"; return 1
    fi
}

check_build() {
    local tarball
    "$BIN/ansible-galaxy" collection build --force --output-path "$WORK/dist" "$REPO"
    tarball="$(ls "$WORK"/dist/confidential-sev-*.tar.gz)"
    tar -tzf "$tarball" | sed 's|/$||' | LC_ALL=C sort >"$WORK/files.txt"
    "$REPO/scripts/expected_files.sh" --compare "$WORK/files.txt"
}

check_install() {
    "$BIN/ansible-galaxy" collection install --force -p "$WORK/collections" "$WORK"/dist/confidential-sev-*.tar.gz
    "$BIN/ansible-galaxy" collection list -p "$WORK/collections" confidential.sev
    [[ -f "$WORK/collections/ansible_collections/confidential/sev/MANIFEST.json" ]]
}

check_doc() {
    local dir kind name count=0 listed
    for dir in "$WORK"/collections/ansible_collections/confidential/sev/plugins/*/; do
        kind="$(basename "$dir")"
        case "$kind" in
            modules) kind=module ;;
            action | module_utils | plugin_utils | doc_fragments) continue ;;
        esac
        for f in "$dir"*.py; do
            [[ -e "$f" ]] || continue
            name="$(basename "$f" .py)"
            [[ "$name" == __init__ ]] && continue
            echo "== ansible-doc -t $kind confidential.sev.$name"
            no_warnings "$BIN/ansible-doc" -t "$kind" "confidential.sev.$name" >/dev/null
            if [[ "$kind" == module ]]; then count=$((count + 1)); fi
        done
    done
    # every module is listed (a module whose docs do not load drops out)
    listed="$("$BIN/ansible-doc" -t module -l confidential.sev 2>&1 | grep -c '^confidential\.sev\.' || true)"
    echo "modules: $count files, $listed listed"
    [[ "$listed" == "$count" ]] || { echo "MATRIX: ansible-doc -l lists $listed of $count modules"; return 1; }
    for role in "$WORK"/collections/ansible_collections/confidential/sev/roles/*/; do
        name="$(basename "$role")"
        echo "== ansible-doc -t role confidential.sev.$name"
        no_warnings "$BIN/ansible-doc" -t role "confidential.sev.$name" | tee "$WORK/role-$name.txt" >/dev/null
        grep -q 'ENTRY POINT: \*\?main' "$WORK/role-$name.txt" ||
            { echo "MATRIX: role $name documents no main entry point"; return 1; }
    done
}

ROME="$REPO/tests/data/amd-certs/sev-chains/rome"
b64() { base64 -w0 "$1"; }

check_adhoc() {
    local ovmf="$REPO/tests/data/ovmf/ovmf_OvmfX64_suffix.bin" out digest mode
    cd "$WORK/adhoc"
    # 1. reference values from the test OVMF: a firmware-only plain SEV launch
    #    digest is the firmware's SHA-256
    out="$("$BIN/ansible" localhost -m confidential.sev.sev_reference_measurement \
        -a "firmware=$ovmf format=json dest=$WORK/adhoc/ref.json")"
    printf '%s\n' "$out"
    digest="$(sha256sum "$ovmf" | cut -d' ' -f1)"
    grep -q "\"launch_digest\": \"$digest\"" "$WORK/adhoc/ref.json" ||
        { echo "MATRIX: ref.json lacks the launch digest $digest"; return 1; }
    # 2. a session from the real Rome chain (AMD's pinned roots), then removed
    local args
    args="$(printf '{"node_sev": {"pdh": "%s", "cert_chain": "%s", "cpu0_id": "%s", "cbitpos": 47,
        "reduced_phys_bits": 1}, "cek_file": "%s/cek.cert", "policy": 805371907,
        "min_pdh_api_version": "0.22", "tek_file": "%s/k/guest.tek", "tik_file": "%s/k/guest.tik",
        "dh_cert_file": "%s/k/guest.godh.b64", "session_file": "%s/k/guest.session.b64"}' \
        "$(b64 "$ROME/pdh.cert")" "$(cat "$ROME/pek.cert" "$ROME/oca.cert" "$ROME/cek.cert" | base64 -w0)" \
        "$(head -c 64 /dev/zero | tr '\0' 'A' | base64 -w0)" "$ROME" "$WORK/adhoc" "$WORK/adhoc" \
        "$WORK/adhoc" "$WORK/adhoc")"
    mkdir -p "$WORK/adhoc/k"
    "$BIN/ansible" localhost -m confidential.sev.sev_session -a "$args"
    for f in guest.tek guest.tik; do
        mode="$(stat -c %a "$WORK/adhoc/k/$f")"
        [[ "$mode" == 600 ]] || { echo "MATRIX: k/$f has mode $mode, not 600"; return 1; }
    done
    grep -q . "$WORK/adhoc/k/guest.session.b64" || { echo "MATRIX: no session written"; return 1; }
    "$BIN/ansible" localhost -m confidential.sev.sev_session -a "state=absent tek_file=$WORK/adhoc/k/guest.tek \
        tik_file=$WORK/adhoc/k/guest.tik dh_cert_file=$WORK/adhoc/k/guest.godh.b64 \
        session_file=$WORK/adhoc/k/guest.session.b64"
    [[ ! -e "$WORK/adhoc/k/guest.tik" && ! -e "$WORK/adhoc/k/guest.tek" ]] ||
        { echo "MATRIX: state=absent left the keys"; return 1; }
    # 3. bad arguments: refused naming the option, rc 2 (unsupported usage)
    expect_fail '"msg": "policy: .*not an integer.*"rc": 2' \
        "$BIN/ansible" localhost -m confidential.sev.sev_session -a "policy=notanint tek_file=a tik_file=b"
    expect_fail 'Unsupported parameters.*no_such_option' \
        "$BIN/ansible" localhost -m confidential.sev.sev_reference_measurement -a "firmware=$ovmf dest=x no_such_option=1"
    expect_fail 'missing required arguments: firmware|firmware.*required' \
        "$BIN/ansible" localhost -m confidential.sev.sev_reference_measurement -a "dest=$WORK/adhoc/none.json"
    [[ ! -e "$WORK/adhoc/none.json" ]] || { echo "MATRIX: a refused call wrote its output"; return 1; }
}

check_argspec() {
    cd "$WORK/argspec"
    cat >play.yml <<'EOF'
- name: The role's argument spec only
  hosts: localhost
  gather_facts: false
  roles:
    - role: confidential.sev.sev_launch
EOF
    # A valid minimal set: only the always-tagged validation task runs.
    out="$("$BIN/ansible-playbook" -i localhost, play.yml --tags matrix-argspec-only \
        -e sev_launch_domain=guest1 -e "sev_launch_state_dir=$WORK/argspec/state" 2>&1)" || {
        printf '%s\n' "$out"; echo "MATRIX: a valid minimal set failed"; return 1; }
    printf '%s\n' "$out"
    grep -Eq 'Validating arguments against arg spec' <<<"$out" ||
        { echo "MATRIX: the role's argument validation did not run"; return 1; }
    grep -Eq 'ok=1 .*failed=0' <<<"$out" || { echo "MATRIX: expected exactly the validation task, ok"; return 1; }
    [[ ! -e "$WORK/argspec/state" ]] || { echo "MATRIX: validation alone created the state directory"; return 1; }
    # A wrong-typed variable fails with the argument-spec error naming it.
    expect_fail "argument spec.*|Validation of arguments failed" \
        "$BIN/ansible-playbook" -i localhost, play.yml --tags matrix-argspec-only \
        -e sev_launch_domain=guest1 -e '{"sev_launch_resume": [1, 2]}' | tee "$WORK/argspec/bad.txt"
    grep -q 'sev_launch_resume' "$WORK/argspec/bad.txt" ||
        { echo "MATRIX: the argument-spec error does not name sev_launch_resume"; return 1; }
}

for v in "${versions[@]}"; do
    t_venv=$SECONDS
    VDIR="$(core_venv "$v")"
    BIN="$VDIR/bin"
    core="$("$BIN/python" -c 'from ansible import release; print(release.__version__)')"
    record "$v" venv PASS $((SECONDS - t_venv)) "ansible-core $core, $("$BIN/python" -V)"
    WORK="$OUT_ROOT/core-$v"
    mkdir -p "$WORK/adhoc" "$WORK/argspec"
    # Only the installed tarball: no repository symlink, no sys.path collections,
    # no user or project ansible.cfg.
    export ANSIBLE_COLLECTIONS_PATH="$WORK/collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
    export ANSIBLE_CONFIG="$WORK/none.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
    export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
    export ANSIBLE_LOCAL_TEMP="$WORK/tmp" ANSIBLE_HOME="$WORK/ansible-home"
    export ANSIBLE_PYTHON_INTERPRETER="$BIN/python"
    run_check "$v" build check_build
    run_check "$v" install check_install
    run_check "$v" doc check_doc
    run_check "$v" adhoc check_adhoc
    run_check "$v" argspec check_argspec
    cd "$REPO"
done

printf '\n======== version matrix (%s) ========\n' "$(elapsed "$start")"
printf '%s\n' "${SUMMARY[@]}"
if ((failed)); then echo "MATRIX: FAILED"; else echo "MATRIX: PASSED"; fi
exit "$failed"
