# Shared set-up for scripts/demo.sh and scripts/test.sh (sourced, not run).
# Creates .venv, installs cif (Rust extension built in release mode by maturin) with the
# given extras, and makes sure a real redis-server binary is available.

cif_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$cif_root"

log() { printf '\n==> %s\n' "$*"; }

ensure_redis_server() {
  if command -v redis-server >/dev/null 2>&1; then
    return 0
  fi
  log "installing redis-server (Debian package)"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # The package may start a system service; cif's tests start their own servers.
}

ensure_venv() {
  local extras="$1"
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
  python -m pip install -q --upgrade pip
  log "building and installing cif[$extras] (Rust core in release mode)"
  python -m pip install -q -e ".[$extras]"
}
