#!/usr/bin/env bash
# ansible-lint with the production profile (configuration: .ansible-lint).
#   bash scripts/lint.sh [ansible-lint args]
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv
cd "$REPO"
command -v ansible-lint >/dev/null || die "ansible-lint not found in $VENV: run scripts/setup.sh"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTION_ROOT"
exec ansible-lint --profile production "$@"
