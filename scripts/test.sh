#!/usr/bin/env bash
# The README's test command: static checks, unit tests, then the e2e tests against a real
# kind cluster. Installs what it needs first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-python.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "==> ruff"
ruff check chaoskit tests
ruff format --check chaoskit tests
echo "==> mypy (strict)"
mypy
echo "==> import layers"
lint-imports

echo "==> pytest"
exec pytest tests "$@"
