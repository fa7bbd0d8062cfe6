# PostgreSQL and Redis for the second pytest run of ./scripts/test (source scripts/_env.sh first).
#
# start_test_backends sets LMSAUTH_TEST_DATABASE_URL and LMSAUTH_TEST_REDIS_URL. A URL already
# set is used as it is; else a server answering on 127.0.0.1 at the default port
# (LMSAUTH_TEST_PG_PORT, 5432; LMSAUTH_TEST_REDIS_PORT, 6379: CI's and this machine's) is used;
# else a throwaway server is started: Debian's postgresql and redis-server packages (installed
# when missing, as root or with sudo), run as an unprivileged user in a temporary folder
# (LMSAUTH_TEST_BACKENDS_DIR) on free ports, PostgreSQL with trust auth and a database `test`.
# stop_test_backends stops what was started and removes the folder; ./scripts/test runs it on
# exit, whatever the outcome. Anything that fails fails the caller, with the server's log.

_port_answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Run a command as the unprivileged user (PostgreSQL refuses to run as root), from the
# servers' folder (nobody may not be allowed into the caller's).
_as_server_user() {
  (
    cd "$LMSAUTH_TEST_BACKENDS_DIR" || exit 1
    if [ "$(id -u)" -eq 0 ]; then
      exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
    fi
    exec "$@"
  )
}

_fail_with_log() {
  echo "error: $1; its log:" >&2
  cat "$2" >&2 2>/dev/null || true
  return 1
}

_backends_dir() {
  if [ -z "${LMSAUTH_TEST_BACKENDS_DIR:-}" ]; then
    LMSAUTH_TEST_BACKENDS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/lmsauth-backends.XXXXXX")"
    chmod 755 "$LMSAUTH_TEST_BACKENDS_DIR"
    export LMSAUTH_TEST_BACKENDS_DIR
  fi
}

_postgres_bindir() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$found" ] || [ ! -x "$found/initdb" ]; then
    install_debian_packages postgresql
    found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  fi
  [ -n "$found" ] && [ -x "$found/initdb" ] || {
    echo "error: no initdb under /usr/lib/postgresql/*/bin after installing postgresql" >&2
    return 1
  }
  echo "$found"
}

_start_postgres() {
  local bin port folder
  bin="$(_postgres_bindir)" || return 1
  _backends_dir
  port="$(_free_port)"
  folder="$LMSAUTH_TEST_BACKENDS_DIR/postgres"
  mkdir -p "$folder"
  [ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$folder"
  _as_server_user "$bin/initdb" -D "$folder/data" -U postgres --auth=trust -E UTF8 --no-sync \
    >"$LMSAUTH_TEST_BACKENDS_DIR/initdb.log" 2>&1 ||
    _fail_with_log "initdb failed" "$LMSAUTH_TEST_BACKENDS_DIR/initdb.log" || return 1
  # A throwaway server: nothing needs to survive a crash, so no fsync.
  _as_server_user "$bin/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w -t 60 start -o \
    "-p $port -k $folder -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    >/dev/null || _fail_with_log "PostgreSQL did not start" "$folder/server.log" || return 1
  echo "$bin" >"$LMSAUTH_TEST_BACKENDS_DIR/postgres.bin"
  _as_server_user "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test ||
    _fail_with_log "createdb test failed" "$folder/server.log" || return 1
  LMSAUTH_TEST_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:$port/test"
  echo "started PostgreSQL ($bin) on 127.0.0.1:$port, data in $folder" >&2
}

_start_redis() {
  local port folder
  ensure_debian_commands redis-server
  _backends_dir
  port="$(_free_port)"
  folder="$LMSAUTH_TEST_BACKENDS_DIR/redis"
  mkdir -p "$folder"
  [ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$folder"
  _as_server_user redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$folder" --daemonize yes --pidfile "$folder/redis.pid" --logfile "$folder/redis.log" ||
    _fail_with_log "redis-server did not start" "$folder/redis.log" || return 1
  local waited=0
  until _port_answers "$port"; do
    waited=$((waited + 1))
    [ "$waited" -le 100 ] || _fail_with_log "Redis does not answer on $port" "$folder/redis.log" || return 1
    sleep 0.1
  done
  LMSAUTH_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  echo "started Redis on 127.0.0.1:$port" >&2
}

start_test_backends() {
  local pg_port="${LMSAUTH_TEST_PG_PORT:-5432}" redis_port="${LMSAUTH_TEST_REDIS_PORT:-6379}"
  if [ -z "${LMSAUTH_TEST_DATABASE_URL:-}" ]; then
    if _port_answers "$pg_port"; then
      LMSAUTH_TEST_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:$pg_port/test"
    else
      echo "nothing answers on 127.0.0.1:$pg_port: starting a throwaway PostgreSQL" >&2
      _start_postgres || return 1
    fi
  fi
  if [ -z "${LMSAUTH_TEST_REDIS_URL:-}" ]; then
    if _port_answers "$redis_port"; then
      LMSAUTH_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
    else
      echo "nothing answers on 127.0.0.1:$redis_port: starting a throwaway Redis" >&2
      _start_redis || return 1
    fi
  fi
  export LMSAUTH_TEST_DATABASE_URL LMSAUTH_TEST_REDIS_URL
  echo "the PostgreSQL + Redis run uses $LMSAUTH_TEST_DATABASE_URL and $LMSAUTH_TEST_REDIS_URL" >&2
}

# Stop what start_test_backends started (nothing when it used running servers) and wait for it.
stop_test_backends() {
  local folder="${LMSAUTH_TEST_BACKENDS_DIR:-}" status=0
  [ -n "$folder" ] && [ -d "$folder" ] || return 0
  if [ -f "$folder/postgres.bin" ] && [ -f "$folder/postgres/data/postmaster.pid" ]; then
    _as_server_user "$(cat "$folder/postgres.bin")/pg_ctl" -D "$folder/postgres/data" -m immediate -w stop \
      >/dev/null || status=1
  fi
  if [ -f "$folder/redis/redis.pid" ]; then
    local pid waited=0
    pid="$(cat "$folder/redis/redis.pid")"
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 100 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -0 "$pid" 2>/dev/null && status=1
  fi
  rm -rf "$folder"
  [ "$status" -eq 0 ] && echo "stopped the throwaway test servers" >&2
  return "$status"
}
