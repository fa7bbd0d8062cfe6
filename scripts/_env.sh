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

# Browser tests drive Debian's Chromium; install it when missing (needs root or sudo).
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    return
  fi
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing chromium from Debian's packages" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}
