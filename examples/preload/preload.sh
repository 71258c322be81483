#!/usr/bin/env bash
# Preloading SwiftMalloc into programs that were built without it.
#
#   examples/preload/preload.sh [LIBRARY]
#
# LIBRARY is libswiftmalloc.so; by default it is found with pkg-config (set
# PKG_CONFIG_PATH=<prefix>/lib/pkgconfig for an install outside the system paths).
# The script builds who_allocates.c with the plain C compiler (no SwiftMalloc on
# its link line), runs it with the system allocator and then preloaded, preloads
# SwiftMalloc into `sort`, and runs the program again with SWIFTMALLOC_STATS=1,
# which prints the allocator's statistics table on stderr when the program exits.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
lib=${1:-}
if [ -z "$lib" ]; then
    lib="$(pkg-config --variable=libdir swiftmalloc)/libswiftmalloc.so"
fi
[ -f "$lib" ] || { echo "preload.sh: no library at $lib" >&2; exit 1; }
lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")   # LD_PRELOAD wants an absolute path

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftmalloc-preload.XXXXXX")
trap 'rm -rf "$work"' EXIT
${CC:-cc} -O2 -Wall "$here/who_allocates.c" -o "$work/who_allocates" -ldl

echo "== without SwiftMalloc"
"$work/who_allocates"

echo "== LD_PRELOAD=$lib"
LD_PRELOAD="$lib" "$work/who_allocates"

echo "== LD_PRELOAD into a system program: sort"
seq 1 20000 | LD_PRELOAD="$lib" sort -rn >"$work/sorted"
echo "sort wrote $(wc -l <"$work/sorted") lines, the first is $(head -n 1 "$work/sorted")"

echo "== LD_PRELOAD with SWIFTMALLOC_STATS=1: the statistics table on stderr at exit"
LD_PRELOAD="$lib" SWIFTMALLOC_STATS=1 "$work/who_allocates"
