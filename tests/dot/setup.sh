#!/usr/bin/env bash
# Creates the Python venv of the Django OAuth Toolkit conformance server (tests/dot/) and installs the
# pinned requirements. Idempotent: a second run with unchanged requirements only checks a stamp.
#
#   tests/dot/setup.sh            # venv in target/dot-venv (or $TOKENSMITH_DOT_VENV)
#
# Needs python3 (3.10+) with the venv module and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${TOKENSMITH_DOT_VENV:-target/dot-venv}"
requirements="tests/dot/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "tests/dot/setup.sh: $venv is up to date"
  exit 0
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "tests/dot/setup.sh: $python is missing, older than 3.10 or has no venv module; install python3 and python3-venv" >&2
  exit 1
fi

rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
"$venv/bin/python" -c 'import django, oauth2_provider; print("tests/dot/setup.sh: Django", django.get_version(), "and django-oauth-toolkit", oauth2_provider.__version__, "installed in '"$venv"'")'
echo "$want" > "$stamp"
