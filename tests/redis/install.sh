#!/usr/bin/env bash
# Installs Debian's redis-server (and redis-cli) for the Redis token store's tests (crates/redis):
# each test starts its own server on 127.0.0.1, on a free port, without persistence, and stops it.
# Needs root (CI runs as root) and apt. Skips the install when both are already on PATH.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  echo "tests/redis/install.sh: $(redis-server --version | head -1) already installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/redis/install.sh: run as root (apt-get install -y redis-server)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
echo "tests/redis/install.sh: $(redis-server --version | head -1) installed"
