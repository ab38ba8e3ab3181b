#!/usr/bin/env bash
# The test command (README): sets up what it needs, then runs every check and test.
#   formatting, clippy -D warnings, the domain crate's dependency rule, all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_rust
ensure_postgres
ensure_test_venv
ensure_tansu
# sqlx::test creates a fresh database per test from this server.
export DATABASE_URL="${DATABASE_URL:-$PGURL_BASE/postgres}"

log "cargo fmt --check"
cargo fmt --all -- --check

log "domain stays pure (no tokio, sqlx, axum, reqwest in its dependency tree)"
tree="$(cargo tree -p chargeledger-domain -e normal,build --prefix none --locked)"
if ! grep -q '^chargeledger-domain ' <<<"$tree"; then
  echo "cargo tree gave no dependency tree for the domain crate" >&2
  exit 1
fi
forbidden="$(awk '{print $1}' <<<"$tree" | grep -xE 'tokio|sqlx|sqlx-core|axum|reqwest|hyper|mio' || true)"
if [ -n "$forbidden" ]; then
  echo "domain depends on IO/async crates: $forbidden" >&2
  exit 1
fi

log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test"
cargo test --workspace --locked
