#!/usr/bin/env bash
# Debian's Chromium and its WebDriver for the browser tests of the describe form (tests/test_describe_form_browser.py,
# driven by selenium from PyPI). Idempotent; installs only, starts nothing (each test starts its own headless browser).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
