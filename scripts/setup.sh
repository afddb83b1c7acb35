#!/usr/bin/env bash
# Install everything needed to develop and test confidential.sev on a fresh
# Debian 12 machine (run as root). Idempotent: re-runs skip apt when all
# packages are present and skip pip when requirements-dev.txt is unchanged.
#
#   bash scripts/setup.sh            # normal
#   SETUP_FORCE=1 bash scripts/setup.sh   # re-run pip install even if stamped
#   PYTHON=/path/to/python3.11 bash scripts/setup.sh   # choose the interpreter
#
# Result:
#   .venv/                                     virtualenv (Python >= 3.11)
#   build/ansible_collections/confidential/sev symlink -> repo root, for
#                                              PYTHONPATH=build and
#                                              ANSIBLE_COLLECTIONS_PATH=build.
# ansible-test cannot use that symlink (it resolves the cwd); scripts/sanity.sh
# makes a real copy under build/sanity/ instead.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"
start=$SECONDS

# ---------------------------------------------------------------- python ----
python_ok() {  # usable interpreter >= 3.11 with the venv module
    "$1" - <<'PY' >/dev/null 2>&1
import sys, venv, ensurepip
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
}

find_python() {
    local c
    for c in ${PYTHON:-} python3.11 python3 /usr/bin/python3; do
        if command -v "$c" >/dev/null 2>&1 && python_ok "$c"; then
            # resolve pyenv shims to the real interpreter
            "$c" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}

PY_BASE="$(find_python || true)"

# ------------------------------------------------------------------- apt ----
APT_PACKAGES=(
    ca-certificates git gcc pkg-config libvirt-dev   # build libvirt-python
    python3-lxml python3-cryptography python3-libvirt
    libvirt-clients libvirt-clients-qemu libvirt-daemon-system libvirt-daemon-driver-qemu
    qemu-system-x86 ovmf openssl
    iproute2 openssh-client openssh-server
    util-linux  # unshare, nsenter (tests/integration: private libvirtd)
    time        # GNU time (/usr/bin/time -v) for benchmark memory figures
    shellcheck  # enables ansible-test's shellcheck sanity test
    pandoc      # scripts/docsite.sh: docs/*.md -> docs/docsite/rst (antsibull-docs takes rst)
)
# A pyenv interpreter ships its own headers and venv; Debian's needs packages.
if [[ -z "$PY_BASE" || "$PY_BASE" == /usr/bin/* ]]; then
    APT_PACKAGES+=(python3 python3-venv python3-dev python3-pip)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]]; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    [[ $EUID -eq 0 ]] || die "need root to apt-get install: ${missing[*]}"
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Do not let package scripts start daemons (libvirtd, sshd) as a side
    # effect; tests start what they need. Keep an existing policy-rc.d.
    created_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    trap '[[ -n "$created_policy" ]] && rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    [[ -n "$created_policy" ]] && rm -f /usr/sbin/policy-rc.d
    created_policy=""
else
    log "apt: all ${#APT_PACKAGES[@]} packages already installed"
fi

[[ -n "$PY_BASE" ]] || PY_BASE="$(find_python)" || die "no Python >= 3.11 with venv found"

# ------------------------------------------------------------------ venv ----
sanitize_pip_env
if [[ -x "$VENV/bin/python" ]] && python_ok "$VENV/bin/python"; then
    log "using existing virtualenv $VENV ($("$VENV/bin/python" -V 2>&1))"
else
    [[ -e "$VENV" ]] && { warn "$VENV is unusable; recreating it"; rm -rf "$VENV"; }
    log "creating virtualenv $VENV with $PY_BASE"
    "$PY_BASE" -m venv "$VENV"
fi

stamp="$VENV/.confidential-sev-setup.stamp"
want="$("$VENV/bin/python" -V 2>&1) $(sha256sum requirements-dev.txt | cut -d' ' -f1)"
if [[ "${SETUP_FORCE:-0}" != 1 && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "pip: requirements-dev.txt unchanged since last install (SETUP_FORCE=1 to redo)"
else
    log "pip install -r requirements-dev.txt"
    "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
    "$VENV/bin/python" -m pip check || warn "pip check reported conflicts (see above)"
    echo "$want" >"$stamp"
fi

# ------------------------------------------------------- collection tree ----
mkdir -p "$(dirname "$COLLECTION_LINK")"
if [[ -e "$COLLECTION_LINK" && ! -L "$COLLECTION_LINK" ]]; then
    warn "$COLLECTION_LINK is not a symlink; replacing it"
    rm -rf "$COLLECTION_LINK"
fi
ln -sfn ../../.. "$COLLECTION_LINK"
[[ "$(cd "$COLLECTION_LINK" && pwd -P)" == "$REPO" ]] || die "bad symlink $COLLECTION_LINK"

log "setup done in $(elapsed "$start"): $("$VENV/bin/ansible" --version | sed -n 1p)"
log "use: . $VENV/bin/activate; export PYTHONPATH=$COLLECTION_ROOT ANSIBLE_COLLECTIONS_PATH=$COLLECTION_ROOT"
