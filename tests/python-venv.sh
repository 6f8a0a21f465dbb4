#!/usr/bin/env bash
# Creates a Python venv for a third-party test server and installs its pinned requirements; shared by
# tests/dot/setup.sh and tests/authlib/setup.sh. Idempotent: with unchanged requirements a second run
# only checks a stamp (the requirements' SHA-256, written once the install succeeded).
#
#   tests/python-venv.sh NAME VENV REQUIREMENTS CHECK
#
# NAME prefixes every message; CHECK is Python run in the venv after the install, which imports the
# server's packages and prints their versions. Needs python3 (3.10+, or $PYTHON) with the venv module
# and access to PyPI.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 NAME VENV REQUIREMENTS CHECK" >&2; exit 2; }
name=$1 venv=$2 requirements=$3 check=$4
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$name: $venv is up to date"
  exit 0
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "$name: $python is missing, older than 3.10 or has no venv module; install python3 and python3-venv" >&2
  exit 1
fi

rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
printf '%s: ' "$name"
"$venv/bin/python" -c "$check"
echo "$want" > "$stamp"
