#!/bin/sh
# Installs the mlmkit wheel copied to /build/wheel into the image's venv (its dependencies are there already)
# and checks, as the non-root user, that mlmkit and the given sub-commands start.
set -eu
/opt/mlmkit/bin/pip install -q --no-deps --no-compile /build/wheel/mlmkit-*.whl
python3 -m compileall -q --invalidation-mode unchecked-hash /opt/mlmkit/lib/python3*/site-packages/mlmkit
rm -rf /build/wheel /build/install-mlmkit.sh
for command in "" "$@"; do
  runuser -u mlmkit -- mlmkit $command --help >/dev/null
done
