#!/usr/bin/env bash
# Creates .venv with chaoskit and its test tools; skips the install when pyproject.toml is
# unchanged since the last successful one. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "chaoskit needs Python >= 3.11 (set PYTHON=...)" >&2
    exit 1
fi
if ! "$PYTHON" -m venv --help >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi

stamp=.venv/.chaoskit-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/chaoskit ]; then
    exit 0
fi
echo "==> Python environment (.venv)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "$want" > "$stamp"
