#!/usr/bin/env bash
# Create .venv (if needed) and install ktt into it, editable, with pinned versions.
#   bash scripts/setup.sh         the runtime
#   bash scripts/setup.sh --dev   plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
extras=""
if [ "${1:-}" = "--dev" ]; then
    extras="[dev]"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".${extras}"
