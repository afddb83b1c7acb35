#!/usr/bin/env bash
# Run the molecule scenarios of the sev_launch role (extensions/molecule/)
# against EMULATED SEV hypervisors (scripts/hypervisor.sh), one after the
# other, and fail if any fails.
#
#   bash scripts/molecule.sh                     # default, validation_fails
#   bash scripts/molecule.sh validation_fails    # the named scenarios only
#
# molecule's destroy step stops each scenario's hypervisor; should it not get
# there, this script stops the hypervisors the scenarios name (their
# sev_molecule_hypervisor) with scripts/hypervisor.sh stop, which finds them
# by their own pidfiles in this run's state directory, never by a pattern.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv  # molecule needs the venv's ansible-config on PATH
cd "$REPO"
command -v molecule >/dev/null || die "molecule not found in $VENV: run scripts/setup.sh"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTION_ROOT"
# Plain text: the output ends up in scripts/test.sh's log.
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1

declare -a scenarios=("$@")
((${#scenarios[@]})) || scenarios=(default validation_fails)

# The hypervisor a scenario starts, from its molecule.yml.
hypervisor_of() {
    "$VENV/bin/python" - "extensions/molecule/$1/molecule.yml" <<'PY'
import sys
import yaml
with open(sys.argv[1], encoding='utf-8') as stream:
    config = yaml.safe_load(stream)
print(config['provisioner']['inventory']['group_vars']['all']['sev_molecule_hypervisor'])
PY
}

declare -a hypervisors=()
for s in "${scenarios[@]}"; do
    [[ -f "extensions/molecule/$s/molecule.yml" ]] || die "no scenario extensions/molecule/$s"
    hypervisors+=("$(hypervisor_of "$s")")
done

# The scenarios' hypervisors keep their holder pidfile, status and platform
# state in a directory of this run's own (scripts/hypervisor.sh --state-dir,
# through the environment): nothing another run started can be touched.
hv_state="$(mktemp -d /tmp/sev-molecule.XXXXXX)"
export SEV_HYPERVISOR_STATE_DIR="$hv_state"

# shellcheck disable=SC2317  # invoked through the trap
stop_left_over() {
    local hv
    for hv in "${hypervisors[@]}"; do
        if bash scripts/hypervisor.sh status "$hv" >/dev/null 2>&1; then
            warn "hypervisor $hv still running after molecule: stopping it"
        fi
        # idempotent; also sweeps an instance whose holder died
        bash scripts/hypervisor.sh stop "$hv" --purge 2>/dev/null || warn "could not stop hypervisor $hv"
    done
    rm -rf "$hv_state"
}
trap stop_left_over EXIT

failed=0
declare -a summary=()
for s in "${scenarios[@]}"; do
    log "molecule test --scenario-name $s"
    t0=$SECONDS
    rc=0
    molecule test --scenario-name "$s" || rc=$?
    if ((rc)); then
        failed=1
        summary+=("$(printf '%-18s FAIL  %4ds  exit %d' "$s" $((SECONDS - t0)) "$rc")")
    else
        summary+=("$(printf '%-18s PASS  %4ds' "$s" $((SECONDS - t0)))")
    fi
done
printf '\n======== molecule ========\n'
printf '%s\n' "${summary[@]}"
exit "$failed"
