#!/usr/bin/env bash
# Builds the Python validator into a WebAssembly component:
#   examples/python-validator/build.sh OUT.wasm
# (`--install-only` installs the tool and stops.)
# componentize-py (pinned in requirements.txt) is installed from PyPI into
# .venv beside this script on first use. Safe to run concurrently.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUT.wasm | build.sh --install-only}"
if [ "$out" != --install-only ]; then
    mkdir -p "$(dirname "$out")"
    out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
fi

exec 9>"$here/.build.lock"
flock 9

venv="$here/.venv"
if ! "$venv/bin/componentize-py" --version >/dev/null 2>&1 || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/requirements.txt"
fi
[ "$out" = --install-only ] && exit 0

cd "$here"
# The WIT package is the repository's wit/ folder; the world is `validator`.
"$venv/bin/componentize-py" -d ../../wit -w validator componentize app -o "$out.tmp"
mv "$out.tmp" "$out"
