#!/usr/bin/env bash
# SwiftMalloc's heap profiler next to heaptrack: time, peak RSS and leak
# exactness on an allocation-heavy C program and on python3. See README.md.
#
#   benchmarks/profilers/run.sh [--rounds N] [--quick] [--no-perf] [--no-heaptrack-swm]
#                               [--keep] [--lib PATH] [--cli PATH] [--timeout S]
#
# Installs what is missing with apt-get (heaptrack, gcc, python3; perf is used
# when it works and skipped otherwise), then runs profilers.py (python3,
# standard library only). Needs .build/release/libswiftmalloc.so and
# .build/release/swiftmalloc-cli (swift build -c release); both are copied to a
# scratch directory first, so a rebuild during the run does not change them.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"

missing=()
command -v heaptrack >/dev/null 2>&1 && command -v heaptrack_print >/dev/null 2>&1 || missing+=(heaptrack)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -x /usr/bin/python3 ] || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "run.sh: installing ${missing[*]}" >&2
    if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; then
        $sudo apt-get update -q >/dev/null
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    fi
fi

exec /usr/bin/python3 "$here/profilers.py" "$@"
