# Shared by scripts/serve and scripts/test: create .venv and install what is needed, once.
ensure_venv() {
  local extra="${1:-}"
  local spec="."
  [ -n "$extra" ] && spec=".[$extra]"
  local stamp=".venv/.installed-${extra:-base}"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e "$spec"
    touch "$stamp"
  fi
}

# Install Debian packages whose command is missing (needs root or sudo): chromium for the
# browser tests, wrk for the benchmark smoke run.
ensure_debian_commands() {
  local missing=()
  for command in "$@"; do
    command -v "$command" >/dev/null 2>&1 || missing+=("$command")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing ${missing[*]} from Debian's packages" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The second run of ./scripts/test: the PostgreSQL and Redis that CI (and this machine) provide.
DEFAULT_TEST_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
