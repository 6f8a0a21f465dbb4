#!/usr/bin/env bash
# Installs what building every feature needs beyond Rust: OpenSSL's headers and pkg-config for the
# `native-tls` feature (reqwest's native-tls on Linux). Skips the install when they are already there.
# Needs root (CI runs as root) and apt.
set -euo pipefail

if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl; then
  echo "scripts/install-build-deps.sh: OpenSSL $(pkg-config --modversion openssl) headers already installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/install-build-deps.sh: run as root (apt-get install -y pkg-config libssl-dev)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends pkg-config libssl-dev >/dev/null
echo "scripts/install-build-deps.sh: OpenSSL $(pkg-config --modversion openssl) headers installed"
