#!/usr/bin/env bash
# Installs playwright-core (pinned in package-lock.json) from npm into
# node_modules beside this script, for the console's browser tests. Chromium
# itself comes from Debian (`chromium`, `chromium-driver`; .ci/run installs
# them). Safe to run concurrently and again: it installs only when the lock
# file changed since the last install.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec 9>"$here/.install.lock"
flock 9
cd "$here"
if ! cmp -s package-lock.json node_modules/.installed-lock.json; then
    npm install --no-save --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.installed-lock.json
fi
