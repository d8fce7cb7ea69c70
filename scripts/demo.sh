#!/usr/bin/env bash
# The README's main-job command: the flash-sale suite on the default cluster
# (kind-config.yaml) with the e-commerce topology, ending with the report, the score and the
# verdict. Installs what it needs first (idempotent: a cluster and topology that serve are
# reused, builds are cached). Extra arguments go to `chaoskit suite run` (e.g.
# --fresh-cluster, --out DIR). Exit 0 if every trial passed, 1 if not.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-python.sh
export PATH="$PWD/.venv/bin:$PATH"

chaoskit images build
exec chaoskit suite run experiments/suites/flash-sale.yaml "$@"
