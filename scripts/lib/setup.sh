# Sourced by scripts/demo.sh and scripts/test.sh: everything a fresh machine
# needs, done again only when it changed.  Needs Python 3.11+ and access to
# PyPI (and, for the tests, Debian's packages).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${CALLCENTER_VENV:-$ROOT/.venv}"

pick_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

ensure_venv() {
    local extras="$1" stamp want
    if [ ! -x "$VENV/bin/python" ]; then
        echo "setup: creating virtualenv $VENV" >&2
        "$(pick_python)" -m venv "$VENV"
    fi
    stamp="$VENV/.callcenter-installed"
    want="$extras $(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "setup: installing callcenter[$extras] into $VENV" >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$extras]"
        echo "$want" > "$stamp"
    fi
}

# Debian packages the test suite runs for real: Redis and PostgreSQL; espeak-ng
# and sox for the IVR prompts; and for the real-Asterisk tests SIPp
# (sip-tester), Asterisk's core sounds and hold music, and the libraries the
# relocatable Asterisk build links against (tests/real_asterisk.py); Chromium and
# its driver for the desktop's browser tests (Playwright drives Debian's build:
# no browser download).
ensure_debian_packages() {
    local missing=() pkg
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
    command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
    command -v sox >/dev/null 2>&1 || missing+=(sox)
    command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    [ -f /usr/share/asterisk/sounds/en_US_f_Allison/vm-goodbye.gsm ] || missing+=(asterisk-core-sounds-en-gsm)
    [ -f /usr/share/asterisk/sounds/en_US_f_Allison/vm-goodbye.wav ] || missing+=(asterisk-core-sounds-en-wav)
    compgen -G "/usr/share/asterisk/moh/*.gsm" >/dev/null || missing+=(asterisk-moh-opsound-gsm)
    for pkg in libjansson4 libedit2 libxslt1.1 libxml2 libsqlite3-0 libssl3 libuuid1 libicu72; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
            echo "error: need ${missing[*]} (Debian packages); install them as root" >&2; return 1
        fi
    fi
    echo "setup: installing ${missing[*]} from Debian's packages" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null
}
