#!/usr/bin/env bash
# Creates the Python venv of the Authlib server that the JWT client-authentication conformance test
# (tests/tests/authlib_jwt.rs) runs against, and installs the pinned requirements. Idempotent: a second run with unchanged requirements only checks a stamp.
#
#   tests/authlib/setup.sh            # venv in target/authlib-venv (or $TOKENSMITH_AUTHLIB_VENV)
#
# Needs python3 (3.10+) with the venv module and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${TOKENSMITH_AUTHLIB_VENV:-target/authlib-venv}"
requirements="tests/authlib/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "tests/authlib/setup.sh: $venv is up to date"
  exit 0
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "tests/authlib/setup.sh: $python is missing, older than 3.10 or has no venv module; install python3 and python3-venv" >&2
  exit 1
fi

rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
"$venv/bin/python" -c 'import authlib, flask, joserfc; from importlib.metadata import version; print("tests/authlib/setup.sh: Authlib", authlib.__version__, "Flask", version("flask"), "joserfc", version("joserfc"), "installed in '"$venv"'")'
echo "$want" > "$stamp"
