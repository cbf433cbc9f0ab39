# Shared set-up for scripts/test and scripts/demo: Debian packages, then .venv with the project.
# Sourced, not run. Idempotent: a second run only checks.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"

ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_venv() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV" >&2
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.vaultops-installed-$extras"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "setup: installing vaultops[$extras] into $VENV" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[$extras]" >&2
    touch "$stamp"
  fi
}

# checkov lives in its own venv: installed into .venv it would downgrade boto3 and others.
ensure_checkov() {
  [ -x "$ROOT/.venv-checkov/bin/checkov" ] && return 0
  echo "setup: installing checkov into $ROOT/.venv-checkov" >&2
  python3 -m venv "$ROOT/.venv-checkov"
  "$ROOT/.venv-checkov/bin/pip" install -q --disable-pip-version-check 'checkov>=3.3,<3.4' >&2
}
