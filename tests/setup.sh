#!/usr/bin/env bash
# Installs everything the test suite needs beyond Rust: OpenSSL's headers (the native-tls feature,
# built by --all-features), the Django OAuth Toolkit and Authlib venvs (PyPI), Debian's Chromium + chromedriver and
# redis-server. Idempotent and quick when everything is already there.
#
#   tests/setup.sh && cargo test --workspace --all-features
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-build-deps.sh
tests/dot/setup.sh
tests/authlib/setup.sh
tests/browser/install.sh
tests/redis/install.sh
