#!/usr/bin/env bash
# Create (or update) the virtual environment in .venv with the pinned requirements and the package (editable).
#   ./setup.sh            the app and the library
#   ./setup.sh --test     also Debian's Chromium for the browser tests (needs apt-get, as root or with sudo)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing requirements.txt into .venv (first time: about 1-2 minutes; pip lists each package)"
  .venv/bin/pip install --disable-pip-version-check --progress-bar on -r requirements.txt \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  .venv/bin/pip check
  echo "$want" > "$stamp"
fi
# The package itself, editable: `import geodistill` from any folder and the `geodistill` command in .venv/bin.
# A .venv that links to another environment is left alone (installing there would redirect that environment).
repo=$(pwd -P)
installed_here() {
  (cd / && GEODISTILL_REPO="$repo" "$repo/.venv/bin/python" -c 'import os, sys, geodistill
sys.exit(os.path.realpath(os.path.dirname(geodistill.__file__)) != os.path.join(os.environ["GEODISTILL_REPO"], "geodistill"))' \
    2>/dev/null) && [ -x .venv/bin/geodistill ]
}
if [ -L .venv ]; then
  echo "note: .venv is a link to another environment; not installing the package into it (use it from this folder)"
elif ! installed_here; then
  echo "installing the geodistill package (editable) into .venv"
  .venv/bin/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
fi
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
      || echo "warning: could not install chromium; browser tests will be skipped" >&2
  else
    echo "warning: apt-get not found; browser tests will be skipped" >&2
  fi
fi
