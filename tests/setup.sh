#!/usr/bin/env bash
# Installs everything the test suite needs beyond Rust: the Django OAuth Toolkit venv (PyPI) and
# Debian's Chromium + chromedriver. Idempotent and quick when everything is already there.
#
#   tests/setup.sh && cargo test --workspace --all-features
set -euo pipefail
cd "$(dirname "$0")/.."
tests/dot/setup.sh
tests/browser/install.sh
tests/redis/install.sh
