#!/usr/bin/env bash
# Builds a coverage-instrumented copy of libswiftmalloc.so for long fuzzing runs,
# so libFuzzer is guided by the allocator's own branches, not only the harness's.
#
#   Tests/reliability/build-instrumented.sh OUTDIR
#
# Snapshots Sources/SwiftMalloc and Sources/SwiftMallocShims into OUTDIR/src,
# compiles the Embedded Swift core to LLVM bitcode with swiftc (the same flags as
# Package.swift / CMakeLists.txt), then compiles that bitcode and the C shims with
# clang's SanitizerCoverage (inline 8-bit counters, PC table, comparison tracing)
# and links OUTDIR/libswiftmalloc-cov.so with the same export list. The
# __sanitizer_cov_* callbacks stay undefined: they come from the fuzzer binary,
# which must be linked with -rdynamic. Nothing is written outside OUTDIR, and the
# package's own build directory is not touched.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
SWIFTC=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
CLANG=${FUZZ_CC:-$(dirname "$SWIFTC")/clang}
cov="-fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp"

rm -rf "$out/src" "$out/obj"
mkdir -p "$out/src" "$out/obj"
cp -r "$root/Sources/SwiftMalloc" "$root/Sources/SwiftMallocShims" "$out/src/"
(cd "$root" && git rev-parse HEAD 2>/dev/null; git -C "$root" status --short -- Sources 2>/dev/null) >"$out/src/REVISION"

"$SWIFTC" -enable-experimental-feature Embedded -wmo -parse-as-library -no-allocations -O \
    -module-name SwiftMalloc -I "$out/src/SwiftMallocShims/include" \
    -Xcc -fPIC -Xcc -fno-omit-frame-pointer -Xcc -momit-leaf-frame-pointer \
    -emit-bc -o "$out/obj/SwiftMalloc.bc" "$out"/src/SwiftMalloc/*.swift
"$CLANG" -c -O2 -fPIC $cov "$out/obj/SwiftMalloc.bc" -o "$out/obj/SwiftMalloc.o"
objs=("$out/obj/SwiftMalloc.o")
for c in "$out"/src/SwiftMallocShims/*.c; do
    o="$out/obj/$(basename "$c" .c).o"
    "$CLANG" -c -O2 -fPIC -fno-omit-frame-pointer -gdwarf-4 $cov -I "$out/src/SwiftMallocShims/include" "$c" -o "$o"
    objs+=("$o")
done
"$CLANG" -shared -fPIC -o "$out/libswiftmalloc-cov.so" "${objs[@]}" \
    -Wl,--version-script="$out/src/SwiftMallocShims/exports.map"
echo "$out/libswiftmalloc-cov.so"
