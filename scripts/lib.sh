# Shared set-up for scripts/run.sh and scripts/test.sh. Idempotent: every step
# checks before it acts, so running it on a prepared machine changes nothing.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/chargeledger/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    log "need root for: $*"; return 1; fi
}

apt_install() {
  log "installing $* (apt)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    apt_install cargo rustc
  fi
  command -v pkg-config >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 || apt_install build-essential pkg-config
}

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

# Makes sure a Postgres answers on 127.0.0.1:5432 and that DATABASE_URL reaches it.
ensure_postgres() {
  if [ -n "${CHARGELEDGER_DATABASE_URL:-}" ]; then
    export DATABASE_URL="${DATABASE_URL:-$CHARGELEDGER_DATABASE_URL}"
    return 0
  fi
  if ! pg_up; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      apt_install postgresql
    fi
    local version
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$version" ]; then log "postgresql installed but no cluster found"; return 1; fi
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    pg_up || { log "PostgreSQL did not start"; return 1; }
  fi
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  if psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
    export PGURL_BASE="postgres://postgres@127.0.0.1:5432"
  elif psql "postgres://postgres:postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
    export PGURL_BASE="postgres://postgres:postgres@127.0.0.1:5432"
  else
    # A fresh Debian cluster wants a password over TCP: give the local superuser one.
    log "setting a password for the local postgres superuser (fresh cluster)"
    as_root runuser -u postgres -- psql -Atqc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
    export PGURL_BASE="postgres://postgres:postgres@127.0.0.1:5432"
  fi
}
