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
    log "no Rust toolchain on PATH; trying Debian's (the workspace needs Rust >= 1.85)"
    apt_install cargo rustc rustfmt
  fi
  local minor
  minor="$(rustc --version | awk '{print $2}' | cut -d. -f2)"
  if [ "${minor:-0}" -lt 85 ]; then
    log "rustc $(rustc --version | awk '{print $2}') is too old: install Rust 1.85 or newer (rustup) and run again"
    return 1
  fi
  if ! command -v cc >/dev/null 2>&1; then apt_install build-essential pkg-config; fi
}

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

can_login() { psql "$1/postgres" -Atqc 'select 1' >/dev/null 2>&1; }

# Makes sure a Postgres answers on 127.0.0.1:5432 and sets PGURL_BASE to reach it.
ensure_postgres() {
  if [ -n "${CHARGELEDGER_DATABASE_URL:-}" ]; then
    export PGURL_BASE="${CHARGELEDGER_DATABASE_URL%/*}"
    return 0
  fi
  local created=0
  if ! pg_up; then
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
      apt_install postgresql
      created=1
    fi
    local version
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$version" ]; then log "PostgreSQL is installed but has no cluster (pg_createcluster)"; return 1; fi
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    pg_up || { log "PostgreSQL did not start"; return 1; }
  fi
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  if can_login "postgres://postgres@127.0.0.1:5432"; then
    export PGURL_BASE="postgres://postgres@127.0.0.1:5432"
  elif can_login "postgres://postgres:postgres@127.0.0.1:5432"; then
    export PGURL_BASE="postgres://postgres:postgres@127.0.0.1:5432"
  elif [ "$created" = 1 ]; then
    # The cluster we just installed wants a password over TCP: give its superuser one.
    log "setting the password of the new cluster's postgres superuser"
    as_root runuser -u postgres -- psql -Atqc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
    export PGURL_BASE="postgres://postgres:postgres@127.0.0.1:5432"
  else
    log "cannot log in to the PostgreSQL on 127.0.0.1:5432 as postgres; set CHARGELEDGER_DATABASE_URL"
    return 1
  fi
}

# A Python venv (.venv) from scripts/test-requirements.txt (every package pinned):
# the PyPI `ocpp` package (the tests' charge points), aiosmtpd (the tests' SMTP
# sink), standardwebhooks (verifies our webhook signatures), openapi-python-client
# (the generated-client test) and schemathesis (the contract run).
ensure_test_venv() {
  local venv=".venv"
  local requirements="scripts/test-requirements.txt"
  local want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$want" ]; then
    export CHARGELEDGER_TEST_PYTHON="$PWD/$venv/bin/python"
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || apt_install python3
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  log "creating $venv from $requirements"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$venv/.requirements"
  export CHARGELEDGER_TEST_PYTHON="$PWD/$venv/bin/python"
}

# tansu, the Apache-2.0 Kafka-compatible broker the Kafka tests start on a free
# port (with in-memory storage, so the `dynostore` feature). Building it takes
# about 15 minutes the first time; afterwards it is on PATH and this is a no-op.
ensure_tansu() {
  if ! command -v tansu >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/tansu" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v tansu >/dev/null 2>&1; then
    log "installing tansu (cargo install tansu --locked --features dynostore; ~15 minutes, once)"
    CARGO_TARGET_DIR="$HOME/.cache/chargeledger/tansu-build" \
      cargo install tansu --locked --features dynostore --quiet
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  CHARGELEDGER_TEST_TANSU="$(command -v tansu)"
  export CHARGELEDGER_TEST_TANSU
}

# 64 random hex characters (256 bits).
random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

# The local secrets of the run command: CHARGELEDGER_JWT_SECRET and
# CHARGELEDGER_SECRETS_KEY, generated once into .chargeledger/secrets.env
# (git-ignored, mode 600) and exported; a value already in the environment wins.
# Running it again changes nothing: the same secrets, so tokens and sealed
# credentials stay valid across restarts.
ensure_local_secrets() {
  local file=".chargeledger/secrets.env" name value
  mkdir -p .chargeledger
  chmod 700 .chargeledger
  (umask 077 && touch "$file")
  for name in CHARGELEDGER_JWT_SECRET CHARGELEDGER_SECRETS_KEY CHARGELEDGER_PUBLICATION_KEY; do
    if ! grep -q "^$name=" "$file"; then
      printf '%s=%s\n' "$name" "$(random_hex)" >>"$file"
      log "generated $name into $file"
    fi
  done
  while IFS='=' read -r name value; do
    case "$name" in
      CHARGELEDGER_*) if [ -z "${!name:-}" ]; then export "$name=$value"; fi ;;
    esac
  done <"$file"
}
