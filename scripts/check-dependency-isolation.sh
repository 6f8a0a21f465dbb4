#!/usr/bin/env bash
# Each provider crate must be usable alone: a service depending only on `tokensmith-probit` gets
# `tokensmith-core` and nothing of the other providers, the sandbox, axum, clap, mockall or insta in
# its normal dependency tree. This script checks that with `cargo tree` for every provider crate
# present in the workspace and exits 1 at the end if any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

providers=(probit generic-django ruby-style whitebit)
forbidden_common=(tokensmith-sandbox tokensmith tokensmith-redis redis axum clap mockall insta)

failed=0
checked=0
for provider in "${providers[@]}"; do
  [ -f "crates/$provider/Cargo.toml" ] || continue
  package="tokensmith-$provider"
  checked=$((checked + 1))

  if ! tree=$(cargo tree -p "$package" -e normal --prefix none --color never 2>&1); then
    printf 'FAIL %s: cargo tree failed:\n%s\n' "$package" "$tree" >&2
    failed=1
    continue
  fi
  # One crate name per line, without version or source.
  names=$(printf '%s\n' "$tree" | awk '{print $1}' | sort -u)

  forbidden=("${forbidden_common[@]}")
  for other in "${providers[@]}"; do
    [ "$other" = "$provider" ] || forbidden+=("tokensmith-$other")
  done

  bad=()
  for name in "${forbidden[@]}"; do
    if printf '%s\n' "$names" | grep -qxF "$name"; then
      bad+=("$name")
    fi
  done
  if ! printf '%s\n' "$names" | grep -qxF tokensmith-core; then
    printf 'FAIL %s: tokensmith-core is missing from its normal dependencies\n' "$package" >&2
    failed=1
  fi

  # A library must not switch on features of its users' crates that change their behaviour:
  # serde_json's `preserve_order` turns every `serde_json::Map` in the binary into an IndexMap.
  if cargo tree -p "$package" -e normal,features --prefix none --color never 2>/dev/null \
    | grep -q 'serde_json feature "preserve_order"'; then
    printf 'FAIL %s: its dependencies turn on serde_json'"'"'s `preserve_order` for every user\n' "$package" >&2
    cargo tree -p "$package" -e normal,features -i serde_json --color never 2>&1 | sed 's/^/    /' >&2 || true
    failed=1
  fi

  if [ ${#bad[@]} -gt 0 ]; then
    printf 'FAIL %s: its normal dependency tree contains %s\n' "$package" "${bad[*]}" >&2
    for name in "${bad[@]}"; do
      printf '  why %s:\n' "$name" >&2
      cargo tree -p "$package" -e normal -i "$name" --color never 2>&1 | sed 's/^/    /' >&2 || true
    done
    printf '  move them to [dev-dependencies] (or behind an optional feature) in crates/%s/Cargo.toml\n' "$provider" >&2
    failed=1
  else
    printf 'ok   %s: normal dependencies hold tokensmith-core and no other provider, sandbox or test crate\n' "$package"
  fi
done

if [ "$checked" -eq 0 ]; then
  echo "FAIL: no provider crate found under crates/ (expected one of: ${providers[*]})" >&2
  exit 1
fi
if [ "$failed" -ne 0 ]; then
  echo "FAIL: provider crates must stand alone; see above" >&2
  exit 1
fi
