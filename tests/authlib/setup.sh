#!/usr/bin/env bash
# Creates the Python venv of the Authlib server that the JWT client-authentication conformance test
# (tests/tests/authlib_jwt.rs) runs against, and installs the pinned requirements. Idempotent: a second
# run with unchanged requirements only checks a stamp.
#
#   tests/authlib/setup.sh            # venv in target/authlib-venv (or $TOKENSMITH_AUTHLIB_VENV)
#
# Needs python3 (3.10+) with the venv module and access to PyPI (see tests/python-venv.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${TOKENSMITH_AUTHLIB_VENV:-target/authlib-venv}"
exec tests/python-venv.sh tests/authlib/setup.sh "$venv" tests/authlib/requirements.txt \
  'import authlib, flask, joserfc; from importlib.metadata import version; print("Authlib", authlib.__version__, "Flask", version("flask"), "joserfc", version("joserfc"), "installed")'
