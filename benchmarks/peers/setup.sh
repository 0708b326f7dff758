#!/usr/bin/env bash
# The peers' two environments, from the requirements files beside this script.
#
#   benchmarks/peers/setup.sh            # /work/venv-peers and /work/venv-peers-313
#   VENV311=... VENV313=... PY313=... benchmarks/peers/setup.sh
#   SKIP311=1 benchmarks/peers/setup.sh  # only the 3.13 environment
#
# Both hold this project (editable), the same filelock and the same
# praisonaiagents, so every tool runs the same store code.  interleave-test
# needs Python >= 3.12 and ploom >= 3.13: PY313 names that interpreter
# (default: python3.13 on PATH, else pyenv's 3.13 build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv311=${VENV311:-/work/venv-peers}
venv313=${VENV313:-/work/venv-peers-313}
py311=${PY311:-python3.11}
# the first interpreter that really is >= 3.13 (a pyenv shim on PATH may not be)
if [ -z "${PY313:-}" ]; then
    for candidate in $(command -v python3.13) /root/.pyenv/versions/3.13*/bin/python3.13; do
        if "$candidate" -c 'import sys; assert sys.version_info >= (3, 13)' 2>/dev/null; then
            PY313=$candidate
            break
        fi
    done
fi
py313=${PY313:-}

if [ "${SKIP311:-}" != 1 ]; then
    "$py311" -m venv "$venv311"
    "$venv311/bin/pip" install --quiet -e "$root" -r "$here/requirements-py311.txt"
    echo "peers: $venv311 ready (frontrun)"
fi

if [ -z "$py313" ] || ! "$py313" -c 'import sys; assert sys.version_info >= (3, 13)' 2>/dev/null; then
    echo "peers: no Python >= 3.13 found (set PY313): interleave-test and ploom are not installed" >&2
    exit 0
fi
"$py313" -m venv "$venv313"
"$venv313/bin/pip" install --quiet -e "$root" -r "$here/requirements-py313.txt"
echo "peers: $venv313 ready (interleave-test, ploom)"
