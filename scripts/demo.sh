#!/usr/bin/env bash
# The end-to-end demo: sets up .venv, then chips -> train -> validate -> predict on a real Sentinel-2 cut.
# Usage: bash scripts/demo.sh [OUTPUT_DIR] (default demo-output; replaced if it exists)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/mlmkit demo --output "${1:-demo-output}" --overwrite
