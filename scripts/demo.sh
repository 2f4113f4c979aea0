#!/usr/bin/env bash
# Runs the callcenter demo on embedded defaults (SQLite, in-process state):
# creates or refreshes .venv, installs callcenter, runs `callcenter demo`
# (extra arguments go to it, e.g. --duration 60).
source "$(dirname "$0")/lib/setup.sh"
ensure_venv test
cd "$ROOT"
exec "$VENV/bin/callcenter" demo "$@"
