#!/usr/bin/env bash
# Create .venv (if needed) and install ktt into it, editable, with pinned versions.
#   bash scripts/setup.sh         the runtime
#   bash scripts/setup.sh --dev   plus the test tools, and (as root, with apt) the servers
#                                 the tests start, PostgreSQL and Prometheus, and the load
#                                 generator of scripts/loadtest.py, wrk
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
dev=""
if [ "${1:-}" = "--dev" ]; then
    dev="yes"
fi
if [ -n "$dev" ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    if ! ls /usr/lib/postgresql/*/bin/pg_ctl > /dev/null 2>&1 || ! command -v promtool > /dev/null \
            || ! command -v wrk > /dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql prometheus wrk > /dev/null
    fi
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
extras=""
if [ -n "$dev" ]; then
    extras="[dev]"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".${extras}"
