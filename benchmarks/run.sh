#!/usr/bin/env bash
# lmsauth's benchmark, side by side with its peers: writes benchmarks/RESULTS.md.
#   benchmarks/run.sh            # the full run (about 45 minutes, plus the RSS run)
#   benchmarks/run.sh --quick    # CI smoke (SQLite, tiny sizes, ~1 minute without peers)
# Needs: the project's .venv (scripts/serve or scripts/test create it), wrk, taskset, node/npm,
# and PostgreSQL at 127.0.0.1:5432 (user postgres, trust) for the PostgreSQL half.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq wrk >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  source scripts/_env.sh && ensure_venv
fi
export PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m benchmarks "$@"
