#!/usr/bin/env bash
# Builds the JavaScript router into a WebAssembly component:
#   examples/js-router/build.sh OUT.wasm
# (`--install-only` installs the tool and stops.)
# componentize-js (pinned in package-lock.json) is installed from npm into
# node_modules beside this script on first use. Safe to run concurrently.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUT.wasm | build.sh --install-only}"
if [ "$out" != --install-only ]; then
    mkdir -p "$(dirname "$out")"
    out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
fi

exec 9>"$here/.build.lock"
flock 9

cd "$here"
# Reinstall when package-lock.json changed since the last install.
if ! cmp -s package-lock.json node_modules/.installed-lock.json; then
    # `npm ci` refuses this lock file (npm 11 leaves other platforms' optional
    # bindings out of it); `install --no-save` follows it without rewriting it.
    npm install --no-save --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.installed-lock.json
fi
[ "$out" = --install-only ] && exit 0
node build.mjs "$out"
