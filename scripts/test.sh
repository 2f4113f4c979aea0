#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: creates or refreshes .venv,
# installs the Python and Debian packages the tests need, then runs pytest
# (extra arguments go to pytest).
source "$(dirname "$0")/lib/setup.sh"
ensure_venv test
ensure_debian_packages
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
