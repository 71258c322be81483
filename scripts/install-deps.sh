#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, when missing.
# Usage: scripts/install-deps.sh [extra-package ...]
set -eu
want="gcc g++ make cmake ninja-build pkg-config python3 perl git sqlite3 coreutils binutils procps libunwind-dev redis-server redis-tools $*"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
