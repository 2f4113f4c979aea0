#!/usr/bin/env bash
# Unpacks a relocatable Asterisk build (such as ../shared/asterisk-22-bin/*.tar.xz)
# and prints its install prefix, for CALLCENTER_TEST_ASTERISK:
#   export CALLCENTER_TEST_ASTERISK="$(scripts/unpack-asterisk.sh TARBALL [DEST])"
# DEST defaults to .cache/asterisk in the repository; an unchanged tarball is not unpacked again.
set -euo pipefail
tarball="${1:?usage: unpack-asterisk.sh TARBALL [DEST]}"
dest="${2:-$(cd "$(dirname "$0")/.." && pwd)/.cache/asterisk}"
[ -f "$tarball" ] || { echo "error: no such file: $tarball" >&2; exit 2; }
sum="$(sha256sum "$tarball" | cut -d' ' -f1)"
if [ "$(cat "$dest/.sha256" 2>/dev/null)" != "$sum" ]; then
    rm -rf "$dest"
    mkdir -p "$dest"
    tar -xJf "$tarball" -C "$dest"
    echo "$sum" > "$dest/.sha256"
fi
prefix="$(dirname "$(dirname "$(find "$dest" -path '*/sbin/asterisk' -type f | head -n 1)")")"
[ -x "$prefix/sbin/asterisk" ] || { echo "error: $tarball holds no sbin/asterisk" >&2; exit 1; }
echo "$prefix"
