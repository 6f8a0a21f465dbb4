#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium and its WebDriver (chromedriver) for the WhiteBIT
# consent-flow browser test (tests/tests/whitebit_browser.rs). Needs root (CI runs as root) and apt.
# Skips the install when both are already on PATH.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "tests/browser/install.sh: $(chromium --version 2>/dev/null | head -1) and $(chromedriver --version | head -1) already installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/browser/install.sh: run as root (apt-get install -y chromium chromium-driver)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
echo "tests/browser/install.sh: $(chromium --version 2>/dev/null | head -1) and $(chromedriver --version | head -1) installed"
