#!/usr/bin/env bash
# The README's main command: validate an example SEV launch offline.
# Inputs are made here: Debian's OVMF with AmdSev's hash-table address in its
# footer, a stand-in kernel and initrd, fresh keys, and a measurement from the
# EMULATED platform in tests/support (no SEV hardware is involved).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bash "$repo/scripts/setup.sh"
py="$repo/.venv/bin/python"

export SEV_DEMO_DIR=${SEV_DEMO_DIR:-$(mktemp -d /tmp/sev-demo.XXXXXX)}
chmod 700 "$SEV_DEMO_DIR"
cd "$SEV_DEMO_DIR"
umask 077

echo "== Inputs in $SEV_DEMO_DIR"
"$py" "$repo/tests/support/emulated_platform.py" patch-ovmf /usr/share/OVMF/OVMF_CODE.fd OVMF_CODE.hashes.fd
echo "firmware: Debian's OVMF_CODE.fd, footer patched with AmdSev's hash-table and secret-area addresses"
head -c 8388608 /dev/urandom > vmlinuz   # stand-ins: only their bytes matter to the measurement
head -c 16777216 /dev/urandom > initrd.img
echo "kernel, initrd: stand-in files of random bytes (hashed exactly as a bzImage and an initrd would be)"
"$py" -c 'import secrets,sys; [open(n,"wb").write(secrets.token_bytes(s)) for n,s in (("guest.tik",16),("guest.tek",16),("luks.key",32))]'
echo "TIK, TEK and a 32-byte LUKS key: freshly generated (mode 0600)"

cmdline='console=ttyS0 root=/dev/mapper/root ro  quiet'
measurement=$("$py" "$repo/tests/support/emulated_platform.py" measure --tik guest.tik \
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
cd "$repo"
ANSIBLE_COLLECTIONS_PATH="$repo/build" "$repo/.venv/bin/ansible-playbook" -i localhost, \
  playbooks/demo_offline.yml
