#!/usr/bin/env bash
# Creates the Python venv of the Django OAuth Toolkit conformance server (tests/dot/) and installs the
# pinned requirements. Idempotent: a second run with unchanged requirements only checks a stamp.
#
#   tests/dot/setup.sh            # venv in target/dot-venv (or $TOKENSMITH_DOT_VENV)
#
# Needs python3 (3.10+) with the venv module and access to PyPI (see tests/python-venv.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${TOKENSMITH_DOT_VENV:-target/dot-venv}"
exec tests/python-venv.sh tests/dot/setup.sh "$venv" tests/dot/requirements.txt \
  'import django, oauth2_provider; print("Django", django.get_version(), "and django-oauth-toolkit", oauth2_provider.__version__, "installed")'
