#!/usr/bin/env bash
# Dependency count and cold `cargo build --release` time of two tiny binaries (docs/performance.md):
#   - one that depends only on tokensmith-probit (this checkout, with this checkout's Cargo.lock);
#   - one that depends on oauth2 (default features: its reqwest 0.12 client, rustls) + reqwest.
# Scratch crates and target directories go to a temporary directory (or $1) and are removed at the
# end; nothing in the repository changes. Needs network access to crates.io for the second crate.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
keep="${KEEP_SCRATCH:-}"
[ -n "$keep" ] || trap 'rm -rf "$work"' EXIT

mkdir -p "$work/with-tokensmith/src" "$work/with-oauth2/src"
cat > "$work/with-tokensmith/Cargo.toml" <<TOML
[package]
name = "with-tokensmith"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
tokensmith-probit = { path = "$repo/crates/probit" }

[workspace]
TOML
cat > "$work/with-tokensmith/src/main.rs" <<'RS'
fn main() {
    let provider = tokensmith_probit::ProbitBuilder::new().client_id("id").client_secret("secret").build();
    println!("{provider:?}");
}
RS
cp "$repo/Cargo.lock" "$work/with-tokensmith/Cargo.lock"

cat > "$work/with-oauth2/Cargo.toml" <<'TOML'
[package]
name = "with-oauth2"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
oauth2 = "5"
reqwest = { version = "0.12", default-features = false, features = ["rustls-tls"] }

[workspace]
TOML
cat > "$work/with-oauth2/src/main.rs" <<'RS'
use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, TokenUrl};

fn main() {
    let client = BasicClient::new(ClientId::new("id".to_owned()))
        .set_client_secret(ClientSecret::new("secret".to_owned()))
        .set_token_uri(TokenUrl::new("https://accounts.probit.com/token".to_owned()).unwrap_or_else(|e| panic!("{e}")));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build();
    println!("{client:?} {}", http.is_ok());
}
RS

for crate in with-tokensmith with-oauth2; do
  dir="$work/$crate"
  (cd "$dir" && cargo fetch --quiet)
  deps=$(cd "$dir" && cargo tree -e normal --prefix none -f '{p}' | sed 's/ (\*)$//; s/ (proc-macro)$//' | sort -u | grep -vc "^$crate ")
  start=$(date +%s.%N)
  (cd "$dir" && CARGO_TARGET_DIR="$work/target-$crate" CARGO_INCREMENTAL=0 cargo build --release --quiet)
  end=$(date +%s.%N)
  units=$(find "$work/target-$crate/release/.fingerprint" -mindepth 1 -maxdepth 1 -type d | wc -l)
  size=$(stat -c %s "$work/target-$crate/release/$crate")
  printf '%-16s dependencies %3d   build units %3d   cold release build %6.1f s   binary %5.1f MiB\n' \
    "$crate" "$deps" "$units" "$(echo "$end - $start" | bc)" "$(echo "scale=1; $size / 1048576" | bc)"
done
