#!/usr/bin/env bash
# The README's test command: static checks, unit tests, then the e2e tests against a real
# kind cluster. Installs what it needs first (idempotent; builds are cached).
#   scripts/test.sh            everything (what CI runs)
#   scripts/test.sh --unit     static checks and unit tests only (no Docker, no cluster)
set -euo pipefail
cd "$(dirname "$0")/.."

scope=all
if [ "${1:-}" = "--unit" ]; then
    scope=unit
    shift
fi

scripts/setup-python.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "==> ruff"
ruff check chaoskit tests benchmarks examples
ruff format --check chaoskit tests benchmarks examples
echo "==> mypy (strict)"
mypy
echo "==> import layers"
lint-imports

if [ "$scope" = unit ]; then
    echo "==> pytest (unit)"
    exec pytest tests/unit "$@"
fi

# The engine, the images and the cluster are set up by chaoskit itself, as a user's run
# would do; building here first shows the progress of a cold build in CI's log.
echo "==> Docker engine and images (cached by version)"
chaoskit images build

# tests/e2e/test_report_render.py renders report.html in headless Chromium (Debian's);
# tests/unit/test_data_tier.py runs the Galera writer elector, which needs jq (it skips
# without it under `make unit`; CI installs it so that it never skips there).
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v jq >/dev/null 2>&1 || missing="$missing jq"
if [ -n "$missing" ]; then
    echo "==> installing$missing (for the report rendering and elector tests)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

echo "==> pytest (unit and e2e)"
exec pytest tests --e2e --durations=40 "$@"
