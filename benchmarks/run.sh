#!/usr/bin/env bash
# SwiftMalloc benchmark runner: every workload under glibc, jemalloc, tcmalloc,
# mimalloc and swiftmalloc, in alternating rounds. See benchmarks/README.md.
#
#   benchmarks/run.sh [--rounds N] [--threads N] [--scaling 1,2,4,...] [--quick]
#                     [--only WORKLOAD,...] [--allocators NAME,...] [--lib PATH]
#
# The runner itself is python3 (standard library only); it is not preloaded.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
py=""
for c in python3 /usr/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 7))' 2>/dev/null; then
        py="$c"
        break
    fi
done
if [ -z "$py" ]; then
    echo "run.sh: python3 (3.7 or newer) is required" >&2
    exit 2
fi
exec "$py" "$here/bench.py" "$@"
