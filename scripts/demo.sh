#!/usr/bin/env bash
# The README's main command: a whole SEV-ES launch, on an EMULATED SEV platform.
#
#   bash scripts/demo.sh             # the launch (below)
#   bash scripts/demo.sh --offline   # the older offline demo: validate a made-up measurement
#
# No SEV hardware exists here. What is real: libvirtd 9.0, libvirt-python,
# QEMU 7.2 running the guest (TCG), sshd, Ansible and this collection. What is
# EMULATED: the AMD secure processor (tests/platform: its own keys and lab
# certificate chain, LAUNCH_START/MEASURE/SECRET), which answers QEMU's SEV
# commands for libvirt, and the "remote" hypervisor host, a libvirtd + sshd in
# namespaces of their own (scripts/hypervisor.sh).
#
# Flow: start the EMULATED hypervisor; make the trusted inputs on the
# controller (0700 temp dir): Debian's OVMF with a hash table and a secret area
# added to its footer, a LUKS key; define an SEV-ES guest; run the role
# confidential.sev.sev_launch with a fresh session (playbooks/demo_launch.yml);
# show what was measured, validated and injected, and the emulated firmware's
# receipt of the key read back from guest memory; then one deliberate mistake,
# refused, its domain destroyed, no secret delivered. Everything started here
# is stopped on exit, also on failure. Exit status non-zero if anything in
# the flow does not behave as shown.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
t_start=$SECONDS

offline=0
case "${1:-}" in
    "") ;;
    --offline) offline=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) die "usage: bash scripts/demo.sh [--offline]" ;;
esac

bash "$REPO/scripts/setup.sh"
activate_venv
py="$VENV/bin/python"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTION_ROOT"

# ------------------------------------------------------------- offline ----
# The offline demo: validation of a measurement computed by the EMULATED
# stand-in tests/support/emulated_platform.py, then a wrong cmdline.
if ((offline)); then
    if [[ -z "${SEV_DEMO_DIR:-}" ]]; then
        SEV_DEMO_DIR="$(mktemp -d /tmp/sev-demo.XXXXXX)"
        # shellcheck disable=SC2064  # expand now: the directory made here
        trap "rm -rf '$SEV_DEMO_DIR'" EXIT
    fi
    export SEV_DEMO_DIR
    chmod 700 "$SEV_DEMO_DIR"
    cd "$SEV_DEMO_DIR"
    umask 077
    echo "== Inputs in $SEV_DEMO_DIR"
    "$py" "$REPO/tests/support/emulated_platform.py" patch-ovmf /usr/share/OVMF/OVMF_CODE.fd OVMF_CODE.hashes.fd
    echo "firmware: Debian's OVMF_CODE.fd, footer patched with AmdSev's hash-table and secret-area addresses"
    head -c 8388608 /dev/urandom > vmlinuz   # stand-ins: only their bytes matter to the measurement
    head -c 16777216 /dev/urandom > initrd.img
    echo "kernel, initrd: stand-in files of random bytes (hashed exactly as a bzImage and an initrd would be)"
    "$py" -c 'import secrets; [open(n,"wb").write(secrets.token_bytes(s)) for n,s in (("guest.tik",16),("guest.tek",16),("luks.key",32))]'
    echo "TIK, TEK and a 32-byte LUKS key: freshly generated (mode 0600)"
    cmdline='console=ttyS0 root=/dev/mapper/root ro  quiet'
    measurement=$("$py" "$REPO/tests/support/emulated_platform.py" measure --tik guest.tik \
        --firmware OVMF_CODE.hashes.fd --kernel vmlinuz --initrd initrd.img --cmdline="$cmdline" \
        --api-major 1 --api-minor 55 --build-id 21 --policy 3)
    echo "reported measurement: $measurement"
    echo "  (made by the EMULATED platform, tests/support/emulated_platform.py, as LAUNCH_MEASURE would)"
    "$py" - "$measurement" "$cmdline" > launch.json <<'PY'
import json, sys
print(json.dumps({'measurement': sys.argv[1], 'cmdline': sys.argv[2],
                  'api_major': 1, 'api_minor': 55, 'build_id': 21, 'policy': 3}))
PY
    echo "== Validation"
    cd "$REPO"
    ansible-playbook -i localhost, playbooks/demo_offline.yml
    exit 0
fi

# -------------------------------------------------------------- launch ----
[[ $EUID -eq 0 ]] || die "the demo needs root (the EMULATED hypervisor uses namespaces, mounts, a veth)"
hv_name=sev-demo
umask 077
work="$(mktemp -d /tmp/sev-demo.XXXXXX)"
chmod 700 "$work"
# The hypervisor's holder, pidfile, status and platform state live in the
# demo's own directory: stop finds exactly this instance, nothing else.
hv_state="$work/hypervisors"
hv_started=0

# shellcheck disable=SC2317  # invoked through the trap
teardown() {
    local rc=$?
    trap - EXIT INT TERM
    echo
    echo "== Teardown"
    if ((hv_started)); then
        local rundir="" left=""
        rundir="$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["rundir"])' \
            "$work/hypervisor.json" 2>/dev/null || true)"
        if bash "$REPO/scripts/hypervisor.sh" stop "$hv_name" --state-dir "$hv_state" --purge; then
            echo "EMULATED hypervisor $hv_name stopped: its libvirtd, sshd, QEMU, namespaces and veth are gone"
        else
            warn "could not stop the EMULATED hypervisor $hv_name (state in $hv_state)"
            rc=1
        fi
        # Check it: no process may still have a mount from its run directory
        # (libvirtd, QEMU and sshd all do while they live). The bind mounts'
        # root field names it (relative to its filesystem, so by its name).
        if [[ -n "$rundir" ]]; then
            left="$(grep -l -F -- "/${rundir##*/}" /proc/[0-9]*/mountinfo 2>/dev/null || true)"
            if [[ -n "$left" || -e "$rundir" ]]; then
                warn "left behind by $hv_name: ${left//$'\n'/ } ${rundir}"
                rc=1
            else
                echo "checked: no process has a mount from $rundir, and the directory is gone"
            fi
        fi
    fi
    rm -rf "$work"
    echo "controller files removed ($work)"
    if ((rc == 0)); then
        echo "== Demo passed in $(elapsed "$t_start")"
    else
        echo "== Demo FAILED (exit $rc) after $(elapsed "$t_start")" >&2
    fi
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== EMULATED hypervisor"
echo "Starting $hv_name: a real libvirtd 9.0 and sshd in their own mount, UTS and network namespaces,"
echo "whose qemu-system-x86_64 is the EMULATED SEV platform (tests/platform) in front of the real QEMU 7.2."
hv_started=1
bash "$REPO/scripts/hypervisor.sh" start "$hv_name" --state-dir "$hv_state" > "$work/hypervisor.json"
"$py" - "$work/hypervisor.json" "$work/inventory.json" <<'PY'
import json, sys
with open(sys.argv[1], encoding='utf-8') as stream:
    status = json.load(stream)
with open(sys.argv[2], 'w', encoding='utf-8') as stream:
    json.dump({'hypervisors': {'hosts': {status['hostname']: status['ansible_host_vars']}}}, stream, indent=1)
print('EMULATED hypervisor %s at %s (ssh root@%s, as Ansible reaches it); platform state %s'
      % (status['hostname'], status['addr'], status['addr'], status['state_dir']))
PY

echo
echo "== The guest's firmware"
echo "Debian's /usr/share/OVMF/OVMF_CODE.fd is the generic OvmfPkgX64 build. Its footer table has the"
echo "hash-table and secret-area entries, but with base 0 and size 0: only the AmdSev package (OvmfPkg/AmdSev)"
echo "reserves those two areas, and Debian does not build it. So QEMU could not put kernel hashes in it and"
echo "there would be no place for the injected secret. The demo patches those two footer entries (16 bytes)"
echo "with the AmdSev build's addresses; the result boots under TCG and is the firmware the guest owner trusts."

cd "$REPO"
echo
echo "== The launch (playbooks/demo_launch.yml, role confidential.sev.sev_launch)"
# Skipped tasks (the role's other branches) would only add noise.
export ANSIBLE_DISPLAY_SKIPPED_HOSTS=false
ansible-playbook -i "$work/inventory.json" playbooks/demo_launch.yml \
    -e "sev_demo_dir=$work" -e "sev_demo_hypervisor_status=$work/hypervisor.json"
