#!/usr/bin/env bash
# The README's main-job command. Installs what it needs first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-python.sh
export PATH="$PWD/.venv/bin:$PATH"

chaoskit --version
echo "The demo suite (cluster, topology, flash-sale load, faults, report) lands issue by issue;"
echo "so far this command only installs chaoskit. See README.md for what works today."
