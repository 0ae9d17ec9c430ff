#!/usr/bin/env bash
# Installs PostgreSQL 15 with PostGIS 3 (Debian 12) for the STAC API tests. Idempotent.
# The tests start their own throwaway cluster (tests/pgstac_server.py); nothing is started here.
set -euo pipefail
if [ -f /usr/share/postgresql/15/extension/postgis.control ] && [ -x /usr/lib/postgresql/15/bin/initdb ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-15-postgis-3 >/dev/null
