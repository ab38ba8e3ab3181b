#!/usr/bin/env bash
# The run command (README): sets up Postgres if needed, builds, migrates and
# serves every role in one process on CHARGELEDGER_HTTP_ADDR (127.0.0.1:8080).
# The JWT secret and the data key are generated once into
# .chargeledger/secrets.env (git-ignored); scripts/chargeledger reads them too.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_rust
ensure_postgres
ensure_local_secrets
export CHARGELEDGER_DATABASE_URL="${CHARGELEDGER_DATABASE_URL:-$PGURL_BASE/chargeledger}"

log "building chargeledger (release)"
cargo build --release --locked -p chargeledger-api
log "serving (creates and migrates the database if needed); Ctrl-C stops"
exec "$CARGO_TARGET_DIR/release/chargeledger" serve "$@"
