#!/usr/bin/env bash
# Creates benchmarks/.venv-peers (idempotent): the peers' own virtual environment.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.venv-peers"
stamp="$venv/.installed"
if [ -f "$stamp" ] && [ "$stamp" -nt "$here/requirements.txt" ]; then exit 0; fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
touch "$stamp"
