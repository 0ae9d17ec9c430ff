#!/usr/bin/env bash
# Sets everything up (Python env, PostgreSQL/PostGIS, Docker engine and images) and runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
for service in scripts/services/*.sh; do
  [ -e "$service" ] && bash "$service"
done
export MLMKIT_SCHEMA_DIR=${MLMKIT_SCHEMA_DIR:-$(cd .. && pwd)/shared/stac-schemas}
export MLMKIT_REQUIRE_SERVICES=${MLMKIT_REQUIRE_SERVICES:-1}
python -m pytest "$@"
