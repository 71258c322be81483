#!/usr/bin/env bash
# Runs the C stress, fork, threads and API tests again in the allocator's other
# modes: statistics (SWIFTMALLOC_STATS=1, tracking), profiling (SWIFTMALLOC_PROFILE=1
# and sampled), checking (SWIFTMALLOC_CHECK=1) and without the background purger.
# Usage: Tests/run-mode-tests.sh LIBPATH
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib.sh"
lib=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ulimit -c 0
for t in api stress fork threads; do
    gcc -O2 -g -pthread -Wall -I "$here/../include" -o "$work/$t" "$here/c/$t.c" || { fail "$t: does not compile"; continue; }
done
modes=("SWIFTMALLOC_STATS=1" "SWIFTMALLOC_PROFILE=1" "SWIFTMALLOC_PROFILE_SAMPLE=65536" "SWIFTMALLOC_CHECK=1" "SWIFTMALLOC_BACKGROUND=0")
for mode in "${modes[@]}"; do
    for t in api stress fork threads; do
        [ -x "$work/$t" ] || continue
        if (cd "$work" && env "$mode" SWIFTMALLOC_REPORT="$work/report.%p" LD_PRELOAD="$lib" \
                timeout 300 "./$t" >"$work/$t.out" 2>&1); then
            pass "$t ($mode)"
        else
            fail "$t ($mode): exit $?"
            tail -n 15 "$work/$t.out"
        fi
        rm -f "$work"/report.*
    done
done
summary
