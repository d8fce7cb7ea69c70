#!/usr/bin/env bash
# The README's main-job command: the default cluster (kind-config.yaml) with the e-commerce
# topology deployed and serving.
# Installs what it needs first (idempotent: a Ready cluster is reused, builds are cached).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-python.sh
export PATH="$PWD/.venv/bin:$PATH"

chaoskit images build
if chaoskit cluster status --name chaoskit >/dev/null 2>&1; then
    echo "cluster 'chaoskit' is up and Ready: reusing it"
else
    chaoskit cluster down --name chaoskit >/dev/null
    chaoskit cluster up --name chaoskit --config kind-config.yaml
fi
chaoskit cluster status --name chaoskit
chaoskit deploy --name chaoskit --topology ecommerce
echo
echo "Next steps land issue by issue (faults, flash-sale load, report); see README.md."
