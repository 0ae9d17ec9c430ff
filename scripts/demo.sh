#!/usr/bin/env bash
# The end-to-end demo: sets up .venv, then chips -> train -> validate -> predict on a real Sentinel-2 cut.
# Usage: bash scripts/demo.sh [OUTPUT_DIR] (default demo-output; replaced if it exists)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Validate offline against the schema mirror beside the checkout when there is one (else schemas are downloaded).
if [ -z "${MLMKIT_SCHEMA_DIR:-}" ] && [ -d ../shared/stac-schemas ]; then
  export MLMKIT_SCHEMA_DIR="$(cd ../shared/stac-schemas && pwd)"
fi
.venv/bin/mlmkit demo --output "${1:-demo-output}" --overwrite
